"""How an operator gets its job: reattach to what an earlier try of the task instance submitted,
attach the job a lost create's callback named, or submit - recording an intent first, so a retry
never pays twice (`akool_flows.airflow.state` has the rules). Mixed into `AkoolJobOperator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from akool_flows.airflow.outcomes import job_from_parts, parts_of
from akool_flows.airflow.state import SubmissionGuard, SubmissionRecord, intent_key, uncertain_message
from akool_flows.api.errors import AkoolError, NotFoundError, ValidationError, create_may_have_happened
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import JobKind
from akool_flows.api.sending import when_create_sent

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SubmissionMixin"]


class SubmissionMixin:
    """The submit side of `AkoolJobOperator` (uses its ``hook``, ``log``, ``detect_faces``,
    and ``resubmit_uncertain``)."""

    def _reattach_or_submit(self, context: Context, kind: JobKind, fields: dict[str, Any], fingerprint: str,
                            guard: SubmissionGuard, client: Any) -> tuple[Job, JobStatus | None]:
        previous = guard.previous()
        if previous is not None and previous.fingerprint != fingerprint:
            self.log.info("the recorded %s job was for different fields; submitting a new one", previous.kind)
        elif previous is not None and previous.phase == "submitted" and previous.parts:
            # Several jobs of one create: a failed one cannot be submitted alone, so reattach to all.
            self.log.info("reattaching to the %d %s jobs submitted by try %s", len(previous.parts), kind.name,
                          previous.try_number)
            return job_from_parts(kind.name, previous.parts), None
        elif previous is not None and previous.phase == "submitted" and previous.job_id:
            job = Job(previous.job_id, kind.name, task_id=previous.task_id)
            try:
                status = client.status(kind.name, previous.job_id)
            except NotFoundError:
                if not self.resubmit_uncertain:
                    raise AirflowFailException(
                        f"the {kind.name} job {previous.job_id} submitted by try {previous.try_number} is unknown "
                        "to Akool (deleted, or results expired after 7 days). Not paying for a new one without "
                        "consent: set resubmit_uncertain=True on this task and clear it.") from None
                self.log.warning("recorded job %s is unknown to Akool; resubmitting (resubmit_uncertain=True)",
                                 previous.job_id)
            else:
                if status.state != "failed":
                    self.log.info("reattaching to %s job %s submitted by try %s (now %s); not submitting again",
                                  kind.name, job.job_id, previous.try_number, status.state)
                    return job, status
                self.log.warning("%s job %s from try %s failed ([%s] %s); submitting a new one",
                                 kind.name, job.job_id, previous.try_number, status.error_code, status.error_message)
        elif previous is not None and previous.phase == "intent" and not previous.maybe_created:
            self.log.info("an earlier try recorded a %s create that never left the worker; submitting it now",
                          kind.name)
        elif previous is not None and previous.phase == "intent":
            found = self._job_from_callback(previous, client)
            if found is not None:
                job = Job(found, kind.name)
                guard.record_submitted(kind.name, fingerprint, found, None)
                self.log.info("the %s create of try %s lost its answer; its callback named job %s: attaching it, "
                              "not paying again", kind.name, previous.try_number, found)
                return job, None
            if not self.resubmit_uncertain:
                ti = context.get("ti")
                raise AirflowFailException(uncertain_message(
                    previous, dag_id=getattr(ti, "dag_id", None), run_id=getattr(ti, "run_id", None),
                    task_id=getattr(ti, "task_id", None), map_index=getattr(ti, "map_index", None)))
            self.log.warning("an earlier try may have created a %s job whose id was lost; submitting a new one "
                             "because resubmit_uncertain=True", kind.name)
        return self._submit(kind, fields, fingerprint, guard, client, context), None

    def _job_from_callback(self, previous: SubmissionRecord, client: Any) -> str | None:
        """The job a callback to the lost create's own path named (recorded by the receiver)."""
        store = client.event_store
        if store is None or not previous.intent_key:
            return None
        try:
            return store.job_for_intent(previous.intent_key)
        except Exception as exc:  # noqa: BLE001 - then the uncertain path decides, as without webhooks
            self.log.warning("could not look up the callback of the lost create: %s", type(exc).__name__)
            return None

    def _callback_url(self, key: str) -> str:
        """This create's own callback path, so its callback names the job even if the answer is lost."""
        secret = self.hook.client_kwargs.get("client_secret")
        if not secret:
            return self.hook.webhook_url
        from akool_flows.webhook.intents import intent_url

        return intent_url(self.hook.webhook_url, key, secret)

    def _submit(self, kind: JobKind, fields: dict[str, Any], fingerprint: str, guard: SubmissionGuard,
                client: Any, context: Context) -> Job:
        if self.detect_faces:
            from akool_flows.airflow.faces import MachineFaceCache, fill_faces_with, needs_detection

            if needs_detection(kind, fields):
                try:
                    fields = fill_faces_with(client, kind, fields, remember=MachineFaceCache())
                except ValidationError as exc:
                    raise AirflowFailException(f"invalid {kind.name} request: {exc}") from None
        key = intent_key(context.get("ti"), fingerprint)
        if kind.accepts_webhook and "webhookUrl" not in fields and client.event_store is not None:
            fields = {**fields, "webhookUrl": self._callback_url(key)}
        try:
            kind.validate(fields)
        except ValidationError as exc:
            raise AirflowFailException(f"invalid {kind.name} request: {exc}") from None
        guard.record_intent(kind.name, fingerprint, key if "webhookUrl" in fields else None)
        try:
            with when_create_sent(guard.record_sent):
                job = client.submit(kind.name, **fields)
        except AkoolError as exc:
            if create_may_have_happened(exc):
                # Leave the intent in place: the next try must not pay again blindly.
                raise AirflowFailException(
                    f"the {kind.name} create call failed in a way that may still have created (and charged) "
                    f"the job: {exc}. Check the Akool dashboard; to submit again anyway set "
                    "resubmit_uncertain=True and clear the task.") from None
            guard.forget()  # provably nothing was created: a retry may submit
            if exc.retryable:
                raise
            raise AirflowFailException(f"Akool refused the {kind.name} job: {exc}") from None
        # Anything else (a kill, a bug) propagates with the intent still recorded: the job may exist.
        several = len(job.jobs) > 1 or bool(job.refused)
        guard.record_submitted(kind.name, fingerprint, job.job_id, job.task_id, parts_of(job) if several else None)
        self.log.info("submitted %s job(s) %s%s", kind.name, ", ".join(j.job_id for j in job.jobs),
                      "".join(f"; {r.language or 'a part'} refused: [{r.code}] {r.message}" for r in job.refused))
        return job
