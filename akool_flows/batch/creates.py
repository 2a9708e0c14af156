"""Creating one row's job: claim it in the ledger, send it, record what came back - or decide
what a failure means (`outcomes.classify_create_failure`) and apply it.

The order is the money rule: the intent is durable (and fenced by the lease, and shared with
other batches of the ledger) before the request is built, marked sent as it is handed to the
transport, and the job id is recorded right after.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING

from akool_flows.api.errors import AkoolError, MalformedResponseError, error_from_code
from akool_flows.api.faces import afill_faces_with, needs_detection
from akool_flows.api.jobs import Job
from akool_flows.api.sending import when_create_sent
from akool_flows.batch.errors import LeaseLostError, LedgerError
from akool_flows.batch.groups import jobs_by_value
from akool_flows.batch.outcomes import classify_create_failure, refusal_backoff
from akool_flows.batch.reconcile import callback_url, load_row
from akool_flows.batch.scheduler import InFlight
from akool_flows.batch.staging import staged_body

if TYPE_CHECKING:
    from akool_flows.batch.engine import Run

__all__ = ["submit_row"]

log = logging.getLogger("akool_flows.batch")

#: An identical request another live run is sending: ask the ledger again after this long.
_SHARED_WAIT = 0.5


async def submit_row(run: Run, i: int) -> None:
    """Send row ``i``'s create (if the ledger lets this run) and record what came back. A row of
    a multi-value group (`batch.groups`) takes its group's other unsent rows along: one create."""
    members = run.take_group(i)
    # Files in URL fields become signed URLs before any intent (a group's rows share the files).
    staged = await staged_body(run, members, run.plan.bodies[i])
    if staged is None:
        return
    body = {**run.plan.bodies[i], **{f: staged[f] for f in run.kind.url_fields if f in staged}}
    if needs_detection(run.kind, body):  # face hook: plain image URLs get their landmarks (api.faces)
        try:
            body = await afill_faces_with(run.client, run.kind, body)
        except AkoolError as exc:  # before any intent: no face found is final, a refused detect retried
            for j in members:
                _create_failed(run, j, exc)
            return
    sending = [j for j in members if _claim(run, j)]
    if not sending:
        return
    field = run.kind.split_field
    if run.plan.group_of[i] is not None and field is not None:
        body = {**body, field: ",".join(str(run.plan.group_value[j]) for j in sending)}
    if run.opts.webhook_url and run.kind.accepts_webhook and "webhookUrl" not in body:
        # One row, one create: its own signed path, so a lost answer resolves from the callback.
        body = {**body, "webhookUrl": callback_url(run, run.plan.keys[i]) if len(sending) == 1
                else run.opts.webhook_url}
    try:
        with when_create_sent(_SentMark(run, sending)):
            job = await run.client.submit(run.kind.name, **body)
    except asyncio.CancelledError:
        raise  # the intents stay: a rerun submits the rows never sent, reports the others as uncertain
    except _NotRecorded as exc:
        _not_recorded(run, sending, "the send", "recording a create's send in the ledger", exc.__cause__ or exc)
        return
    except Exception as exc:  # noqa: BLE001 - AkoolError, or unknown after sending: the job may exist
        if not isinstance(exc, AkoolError):
            log.exception("unexpected error creating row %s", run.plan.keys[i])
        for j in sending:
            _create_failed(run, j, exc)
        return
    if run.plan.group_of[i] is None or field is None:
        _created(run, i, job)
        return
    found = jobs_by_value(job, field)
    if not found and len(sending) == 1:
        found = {str(run.plan.group_value[sending[0]]): job}
    refused = {str(r.language): r for r in getattr(job, "refused", ()) or () if r.language}
    for j in sending:
        value = str(run.plan.group_value[j])
        sub = found.get(value)
        if sub is not None:
            _created(run, j, sub)
        elif value in refused:  # Akool refused this part: nothing created or charged for it
            r = refused[value]
            _create_failed(run, j, error_from_code(r.code or 1003, r.message, run.kind.create_path))
        else:  # paid for all values, answered fewer: that job may exist under an id we never saw
            _create_failed(run, j, MalformedResponseError(
                f"the create answer lists no job for {field}={run.plan.group_value[j]!r}"))


class _NotRecorded(Exception):
    """The ledger could not record that a create is leaving: it is not sent."""


class _SentMark:
    """Marks the claimed rows' intents as sent when their create is handed to the transport
    (`api.sending`): a run that dies before that leaves intents a rerun may submit again."""

    def __init__(self, run: Run, rows: list[int]) -> None:
        self.run, self.rows, self.done = run, rows, False

    def __call__(self) -> None:
        if self.done:  # a retried attempt of the same create
            return
        at = time.time()
        try:
            for j in self.rows:
                self.run.ledger.mark_sent(self.run.batch_id, self.run.plan.keys[j], at, self.run.generation)
        except (LedgerError, OSError) as exc:
            raise _NotRecorded() from exc
        self.done = True


def _not_recorded(run: Run, rows: list[int], what: str, doing: str, exc: BaseException) -> None:
    """The ledger refused to record ``what`` of these rows: they are not sent, and the run stops
    (or leaves the batch to the run that took its lease)."""
    for j in rows:
        run.budget.release(run.est(j))
        run.rows.error[j] = (None, f"not submitted: the ledger could not record {what}")
        run.rows.set_outcome(j, "cancelled")
    if isinstance(exc, LeaseLostError):
        run.lost_lease(exc)
    else:
        run.abort(doing, exc)


def _claim(run: Run, i: int) -> bool:
    """Record the intent (fenced by the lease, shared with other batches); False: do not send."""
    est = run.est(i)
    if run.stopped_by is not None:
        run.budget.release(est)
        run.rows.error[i] = (None, f"not submitted: stopped ({run.stopped_by})")
        run.rows.set_outcome(i, "cancelled")
        return False
    at = time.time()
    try:
        claim = run.ledger.claim(run.batch_id, run.plan.keys[i], generation=run.generation, at=at,
                                  share=run.opts.reuse, share_uncertain=not run.opts.resubmit_uncertain)
    except (LedgerError, OSError) as exc:
        _not_recorded(run, [i], "the intent", "recording an intent in the ledger", exc)
        return False
    if claim.granted:
        run.rows.attempt_at[i] = at
        return True
    run.budget.release(est)
    if claim.wait:
        run.sched.later(i, _SHARED_WAIT)  # another live run is sending it: see what it gets
    else:
        assert claim.source is not None
        log.info("row %s: same request as batch %s, not sent again", run.plan.keys[i], claim.source_batch)
        adopted = run.ledger.row(run.batch_id, run.plan.keys[i])
        assert adopted is not None  # begin_batch registered every valid row
        load_row(run, i, adopted, resumed=False)
    return False


def _created(run: Run, i: int, job: Job) -> None:
    key, now = run.plan.keys[i], time.time()
    run.rows.job_id[i] = job.job_id
    run.rows.submitted_at[i] = now
    run.submitted_count += 1
    try:
        run.ledger.mark_submitted(run.batch_id, key, job.job_id, job.task_id, now)
    except (LedgerError, OSError) as exc:
        run.unsaved[i] = (key, job.job_id, job.task_id, now)
        log.error("row %s: job %s was created but the ledger could not record it; keep this id",
                  key, job.job_id)
        run.abort("recording a job id in the ledger", exc)
    if run.feed is not None:
        run.feed.submitted(job.job_id)
    raw = job.raw
    initial = (job.initial_status if "status" in raw or any(f in raw for f in run.kind.status_fields)
               else None)
    finished_now = initial is not None and initial.done
    if not run.opts.wait or run.abandoned:
        if finished_now:  # finished in the create answer: no status call needed
            run.finish(InFlight(i, job.job_id, time.monotonic(), math.inf), initial, initial.state)
        else:
            run.rows.set_outcome(i, "submitted")
        return
    rec = run.sched.track(i, job.job_id)
    if finished_now:
        run.finish(rec, initial, initial.state)


def _create_failed(run: Run, i: int, exc: BaseException) -> None:
    key = run.plan.keys[i]
    n = run.refusals.get(i, 0) + (1 if getattr(exc, "retryable", False) else 0)
    run.refusals[i] = n
    decision = classify_create_failure(exc, n)
    if decision.created is False:
        run.budget.release(run.est(i))
    run.rows.error[i] = (decision.code, decision.message)
    try:
        if decision.ledger_state == "uncertain":
            run.ledger.mark_uncertain(run.batch_id, key, decision.code, decision.message)
        elif decision.ledger_state == "pending":
            run.ledger.mark_pending(run.batch_id, key, decision.code, decision.message)
        else:
            run.rows.finished_at[i] = time.time()
            run._finish_buffer.append((key, "failed", run.rows.finished_at[i], None, None, decision.code,
                                        decision.message, None))
    except (LedgerError, OSError) as ledger_exc:
        run.abort("recording a failed create in the ledger", ledger_exc)
    if decision.action == "retry" and run.stopped_by is None:
        run.sched.later(i, max(refusal_backoff(n), getattr(exc, "retry_after", None) or 0.0))
        return
    run.rows.set_outcome(i, decision.outcome or "cancelled")
    if decision.action == "stop_auth":
        run.stop("auth", f"Akool refused the credentials or permission: {exc}")
        run.leave_running(f"not waited for: {exc}")
    elif decision.action == "stop_quota":
        run.stop("quota", f"the account is out of credits: {exc}")
