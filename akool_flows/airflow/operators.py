"""Operators that run Akool jobs: one per job kind, plus the generic `AkoolJobOperator`.

Every per-kind operator takes the docs' request fields as templated keyword arguments, so a
DAG reads like the API docs::

    speak = AkoolTtsOperator(task_id="speak", input_text="{{ params.script }}",
                             voice_id="LcfcDJNUP1GQjkzn1xUU", deferrable=True)
    animate = AkoolTalkingPhotoOperator(task_id="animate", talking_photo_url=PHOTO,
                                        audio_url=speak.output["result_url"])

What every operator does, in order:

1. validate the rendered fields against the registry's request model (a bad field fails the
   task before anything is sent or paid for, without retries);
2. look up what an earlier try of this task instance submitted (``task_state_store``): reattach
   to that job instead of paying again (see `akool_flows.airflow.state`);
3. fill face landmarks through face detect for face swap / re-age given plain URLs;
4. record an intent, create the job, record its id (`akool_flows.airflow.submission`);
5. unless ``wait_for_completion=False`` (the default for kinds whose registry entry says
   ``waits_by_default=False``, i.e. live sessions): wait in the worker (polling) or, with
   ``deferrable=True``, in `AkoolJobTrigger` on the triggerer;
6. return a small JSON dict to XCom (the task's only XCom): ``job_id, kind, state, result_url, result_urls,
   conclusion, detail, credits, duration, error_code, error_message``; for a create that makes
   several jobs (``language="fr,de,ja"``) also ``results``, one per language (`finished_results`).

The per-kind classes are built from the registry (``akool_flows.api.kinds.KINDS``) by
`akool_flows.airflow.operator_factory`, so their arguments are the request models' fields, no
more and no less; they are ordinary importable classes with real signatures, docstrings and
``template_fields``, exported from this module.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from akool_flows.airflow.hooks import AkoolHook
from akool_flows.airflow.operator_factory import make_job_operator, operator_class_name
from akool_flows.airflow.submission import SubmissionMixin
# AkoolJobFailedException and job_result are part of this module's interface since the first release.
from akool_flows.airflow.outcomes import AkoolJobFailedException, finished_result, job_result
from akool_flows.airflow.outcomes import finished_results, part_results, parts_of, resumed_parts
from akool_flows.airflow.state import SubmissionGuard, request_fingerprint
from akool_flows.api.errors import AkoolError, ValidationError
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import KINDS, JobKind, get_kind
from akool_flows.api.retry import backoff_delay

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["AkoolJobFailedException", "AkoolJobOperator", "OPERATORS", "job_result"]

#: Transient status-poll failures in a row tolerated while waiting in the worker.
MAX_POLL_ERRORS = 10
#: Longest pause between status polls after transient failures, seconds.
MAX_BACKOFF = 300.0


def _seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValidationError(f"{name} must be a positive number of seconds or a timedelta, got {value!r}",
                              field=name)
    return float(seconds)


_BASE_PARAMS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}


class AkoolJobOperator(SubmissionMixin, BaseOperator):
    """Create one Akool job of any kind in the registry and wait for its result.

    :param kind: the job kind (``tts``, ``moderation``, ``talking_photo``, ... - see
        ``akool-flows kinds``). Per-kind subclasses fix it.
    :param fields: the request fields, with the docs' names (templated). Per-kind subclasses
        take them as keyword arguments instead.
    :param akool_conn_id: the ``akool`` connection (default ``akool_default``).
    :param wait_for_completion: wait until the job completes or fails (False returns the job
        id at once, e.g. for `AkoolJobSensor` downstream). Default: the kind's
        ``waits_by_default`` (True except for live sessions).
    :param deferrable: wait on the triggerer (`AkoolJobTrigger`) and free the worker slot.
        Default: Airflow's ``[operators] default_deferrable``.
    :param poll_interval: seconds between status polls (default 10).
    :param timeout: seconds (or timedelta) to wait for the job; None waits as long as it takes.
        The job keeps running on Akool after a timeout; a retry reattaches to it.
    :param detect_faces: fill missing face landmarks (``opts``) through face detect.
    :param use_webhook: when the connection names a webhook receiver, send ``webhookUrl`` and
        complete from the callback (polls continue as a fallback).
    :param resubmit_uncertain: when an earlier try may have created a job whose id was lost,
        pay for a new one instead of failing (default False: fail and say how to resolve).

    XCom holds the result only (one ``return_value``: one write per task, where a key per XCom
    made ~13). Downstream, take a field with a template and an explicit dependency::

        animate = AkoolTalkingPhotoOperator(..., audio_url="{{ ti.xcom_pull('speak')['result_url'] }}")
        speak >> animate

    or pass ``multiple_outputs=True`` to get each key as its own XCom (``speak.output["result_url"]``).
    """

    template_fields: Sequence[str] = ("fields",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"fields": "json"}
    ui_color = "#ede7ff"

    #: Fixed by per-kind subclasses.
    job_kind: ClassVar[str | None] = None
    #: Per-kind subclasses: the attribute names holding the request fields.
    field_args: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, kind: str | None = None, fields: Mapping[str, Any] | Any = None,
                 akool_conn_id: str = AkoolHook.default_conn_name, wait_for_completion: bool | None = None,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float | timedelta = 10.0, timeout: float | timedelta | None = None,
                 detect_faces: bool = True, use_webhook: bool = True, resubmit_uncertain: bool = False,
                 **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - _BASE_PARAMS)
        fixed = type(self).job_kind
        if unknown:
            known = get_kind(kind or fixed).field_names if (kind or fixed) in KINDS else []
            raise ValidationError(
                f"{type(self).__name__}: unknown argument(s) {', '.join(unknown)}"
                + (f"; the request fields are: {', '.join(known)}" if known else ""), field=unknown[0])
        super().__init__(**kwargs)
        if fixed is not None and kind not in (None, fixed):
            raise ValidationError(f"{type(self).__name__} runs {fixed!r} jobs; kind={kind!r} is not allowed",
                                  field="kind")
        if (kind or fixed) is None:
            raise ValidationError(f"kind is required (allowed: {', '.join(KINDS)})", field="kind")
        self.kind = get_kind(kind or fixed).name
        # `fields` may hold fields the docs do not list: they are sent as given (warned once).
        self.fields = fields
        self.akool_conn_id = akool_conn_id
        self.wait_for_completion = (get_kind(self.kind).waits_by_default if wait_for_completion is None
                                    else bool(wait_for_completion))
        self.deferrable = deferrable
        self.poll_interval = _seconds(poll_interval, "poll_interval")
        self.timeout = _seconds(timeout, "timeout")
        self.detect_faces = detect_faces
        self.use_webhook = use_webhook
        self.resubmit_uncertain = resubmit_uncertain
        self._job: Job | None = None

    @cached_property
    def hook(self) -> AkoolHook:
        return AkoolHook(self.akool_conn_id)

    # --- fields -----------------------------------------------------------------------------

    def request_fields(self) -> dict[str, Any]:
        """The rendered request fields (None values left out: Akool's defaults apply)."""
        if type(self).field_args:
            values = {name: getattr(self, name) for name in type(self).field_args}
        else:
            if self.fields is None:
                values = {}
            elif isinstance(self.fields, Mapping):
                values = dict(self.fields)
            else:
                raise AirflowFailException(f"{self.task_id}: fields must render to a dict of request fields, "
                                           f"got {type(self.fields).__name__}")
        return {k: v for k, v in values.items() if v is not None}

    # --- execute ----------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        kind = get_kind(self.kind)
        fields = self.request_fields()
        try:
            self._prevalidate(kind, fields)
        except ValidationError as exc:
            # Deterministic: retrying the same fields cannot succeed, and nothing was spent.
            raise AirflowFailException(f"invalid {kind.name} request: {exc}") from None
        fingerprint = request_fingerprint(kind.name, fields)
        ti = context.get("ti")
        guard = SubmissionGuard(context.get("task_state_store"), log=self.log,
                                try_number=getattr(ti, "try_number", None))
        store = self._event_store(kind)
        try:
            with self.hook.get_client(event_store=store) as client:
                job, status = self._reattach_or_submit(context, kind, fields, fingerprint, guard, client)
                self._job = job
                if len(job.jobs) > 1 or job.refused:
                    return self._several(ti, client, job, store)
                if status is not None and status.done:
                    return self._finish(status)
                if not self.wait_for_completion:
                    return job_result(status or job.initial_status)
                if self.deferrable:
                    self._defer(job, use_store=store is not None)
                return self._finish(self._wait_in_worker(client, job, store))
        finally:
            if store is not None:
                store.close()

    def _several(self, ti: Any, client: Any, job: Job, store: Any) -> dict[str, Any]:
        """A create that made several jobs (a translation into "fr,de,ja"): wait for every one and
        return one result per part (``results``), failing when any part failed."""
        parts = parts_of(job)
        if not self.wait_for_completion:
            return finished_results(part_results(self.kind, parts, {j.job_id: j.initial_status for j in job.jobs}),
                                    fail_on_failure=False)
        if self.deferrable:
            self._defer(job, use_store=store is not None, parts=parts)
        deadline = time.monotonic() + self.timeout if self.timeout else None
        statuses = {j.job_id: self._wait_in_worker(client, j, store, deadline) for j in job.jobs}
        return finished_results(part_results(self.kind, parts, statuses), ti=ti, log=self.log)

    def _prevalidate(self, kind: JobKind, fields: dict[str, Any]) -> None:
        if self.detect_faces:
            from akool_flows.airflow.faces import prevalidate

            prevalidate(kind, fields)
        else:
            kind.validate(fields)

    def _event_store(self, kind: JobKind) -> Any:
        if not (self.use_webhook and kind.accepts_webhook and self.hook.webhook_url and self.hook.webhook_store_url):
            return None
        return self.hook.get_event_store()

    # --- waiting ----------------------------------------------------------------------------

    def _defer(self, job: Job, *, use_store: bool, parts: list[dict[str, Any]] | None = None) -> None:
        from akool_flows.airflow.triggers import AkoolJobTrigger

        end_time = time.time() + self.timeout if self.timeout else None
        self.defer(
            trigger=AkoolJobTrigger(
                kind=self.kind, job_ids=[j.job_id for j in job.jobs], akool_conn_id=self.akool_conn_id,
                poll_interval=self.poll_interval, end_time=end_time, use_webhook_store=use_store,
                cancel_ids={j.job_id: j.task_id for j in job.jobs if j.task_id} or None),
            method_name="execute_complete",
            # The trigger reports its own timeout with the job's last state; this is a backstop.
            timeout=timedelta(seconds=self.timeout + 300) if self.timeout else None,
            kwargs={"parts": parts} if parts else None,
        )

    def _wait_in_worker(self, client: Any, job: Job, store: Any, deadline: float | None = None) -> JobStatus:
        if deadline is None and self.timeout:
            deadline = time.monotonic() + self.timeout
        errors = 0
        last: JobStatus | None = None
        while True:
            if store is not None:
                st = JobStatus.from_event(self.kind, store.latest(job.job_id))
                # An event says when; what it lacks (verdict, credits) comes from the status call below.
                if st is not None and not get_kind(self.kind).missing_after_event(st):
                    return st
            try:
                last = client.status(self.kind, job.job_id)
                errors = 0
                if last.done:
                    return last
                delay = self.poll_interval
            except AkoolError as exc:
                errors += 1
                if not exc.retryable or errors > MAX_POLL_ERRORS:
                    raise
                delay = backoff_delay(errors, base=self.poll_interval, cap=MAX_BACKOFF)
                self.log.warning("status poll failed (%d in a row), retrying in %.1fs: %s", errors, delay, exc)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AirflowException(
                        f"{self.kind} job {job.job_id} not finished after {self.timeout:g}s (last state: "
                        f"{last.state if last else 'unknown'}). It keeps running on Akool; a retry reattaches.")
                delay = min(delay, remaining)
            time.sleep(delay)

    def execute_complete(self, context: Context, event: dict[str, Any],
                         parts: list[dict[str, Any]] | None = None) -> Any:
        """Resume after `AkoolJobTrigger` fired: return the result or fail with Akool's reason."""
        status = event.get("status")
        jobs = event.get("jobs") or []
        if status in ("success", "failed") and jobs:
            parts = resumed_parts(parts, context.get("task_state_store"), jobs)
            if parts:
                statuses = {j["job_id"]: j for j in jobs}
                return finished_results(part_results(self.kind, parts, statuses), ti=context.get("ti"), log=self.log)
            return self._finish(jobs[0])
        if status == "timeout":
            raise AirflowException(f"{event.get('message')} ({', '.join(event.get('pending') or [])}); "
                                   "the job keeps running on Akool and a retry reattaches to it")
        raise AirflowException(f"waiting for the {self.kind} job failed: {event.get('message')}")

    def _finish(self, status: JobStatus | Mapping[str, Any]) -> dict[str, Any]:
        result = finished_result(status)
        self.log.info("%s job %s %s%s%s", result["kind"], result["job_id"], result["state"],
                      f"; conclusion {result['conclusion']}" if result.get("conclusion") else "",
                      f"; {result['credits']:g} credits" if result.get("credits") is not None else "")
        return result

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: cancel the job where Akool allows it."""
        job = self._job
        if job is None:
            return
        kind = get_kind(self.kind)
        if not kind.cancellable:
            self.log.info("%s jobs cannot be cancelled through the API; job %s runs to completion", kind.name,
                          job.job_id)
            return
        try:
            with self.hook.get_client() as client:
                client.cancel(kind.name, job)
            self.log.info("cancelled %s job %s", kind.name, job.job_id)
        except (AkoolError, ValidationError) as exc:
            self.log.warning("could not cancel %s job %s: %s", kind.name, job.job_id, exc)


# --- per-kind operators, built from the registry ------------------------------------------------

#: kind name -> operator class, one per registry entry: ``AkoolTtsOperator``, ``AkoolModerationOperator``...
OPERATORS: dict[str, type[AkoolJobOperator]] = {}
for _kind in KINDS.values():
    _cls = make_job_operator(_kind, base=AkoolJobOperator, module=__name__, class_name=operator_class_name(_kind))
    # Exported under its own name: DAGs import it, pickle and Airflow's serialization look it up here.
    globals()[_cls.__name__] = OPERATORS[_kind.name] = _cls
    __all__.append(_cls.__name__)
del _kind, _cls
