"""Start of a run: put the plan next to the ledger and decide, per row, what this run does.

=============  ==========================================================================
ledger says    this run
=============  ==========================================================================
completed /    keeps the outcome (and counts its credits as already paid)
failed
submitted /    polls the job (``wait=False``: reports it ``submitted``)
timed_out
uncertain      reports it (never resends: the job may exist) unless ``resubmit_uncertain``
intent         a run died mid-create: becomes ``uncertain`` first (see above)
pending        sends it - after looking for the identical request in other batches
=============  ==========================================================================
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from akool_flows.api.jobs import JobStatus
from akool_flows.batch.ledger import LedgerRow
from akool_flows.batch.results import iso

if TYPE_CHECKING:
    from akool_flows.batch.engine import Run

__all__ = ["batch_intent_key", "callback_url", "load_row", "reconcile"]

log = logging.getLogger("akool_flows.batch")


def reconcile(run: Run) -> None:
    """Fill the run's rows from the ledger; queue what must be sent, track what must be polled."""
    plan, ledger, rows = run.plan, run.ledger, run.rows
    unsent, stale = ledger.mark_stale_intents(run.batch_id)
    if unsent:
        log.info("%d row(s) of batch %s were about to be created when a previous run stopped; their requests "
                 "never left, so they are submitted now", unsent, run.batch_id)
    if stale:
        log.warning("%d row(s) of batch %s had a create call in flight when a previous run stopped; "
                    "they are reported as uncertain", stale, run.batch_id)
    if run.opts.webhook_url and not _callback_secret(run):
        log.warning("webhooks without the account's clientSecret (AKOOL_CLIENT_SECRET): creates get the plain "
                    "webhook URL, so a create whose answer is lost cannot be resolved from its callback")
    known = ledger.rows(run.batch_id)
    if _resolve_from_callbacks(run, known):
        known = ledger.rows(run.batch_id)
    if run.opts.reuse:
        fresh = [plan.keys[i] for i in range(rows.n)
                 if plan.valid[i] and known[plan.keys[i]].state == "pending" and known[plan.keys[i]].attempts == 0]
        # Not intents: another run may be sending those right now; `Ledger.claim` waits for them.
        states = ("submitted", "timed_out", "completed") + (() if run.opts.resubmit_uncertain else ("uncertain",))
        found = (ledger.find_elsewhere(plan.kind.name, fresh, run.batch_id, endpoint=run.client.base_url,
                                       states=states) if fresh else {})
        for key, (other, source) in found.items():
            ledger.adopt(run.batch_id, key, source, other)
        if found:
            log.info("%d row(s) reuse the identical request's job from another batch of this ledger", len(found))
            known = ledger.rows(run.batch_id)
    for i in range(rows.n):
        if plan.duplicate_of[i] is not None:
            continue  # mirrors its original
        if not plan.valid[i]:
            rows.reject(i)
            continue
        load_row(run, i, known[plan.keys[i]], resumed=True)


def batch_intent_key(row_key: str) -> str:
    """The callback-path intent key of a row's create (`akool_flows.webhook.intents.intent_url`)."""
    return "r-" + hashlib.sha256(row_key.encode("utf-8")).hexdigest()[:40]


def _callback_secret(run: Run) -> str | None:
    return getattr(getattr(run.client, "credentials", None), "client_secret", None)


def callback_url(run: Run, row_key: str) -> str:
    """The ``webhookUrl`` of one row's create: ``webhook_url/<intent key>.<hmac>``.

    The HMAC key is the account's clientSecret, taken from the run's client (set with
    AKOOL_CLIENT_SECRET or the Airflow connection's password, whichever auth mode - token, API key
    or clientId/clientSecret - the client uses): the receiver has it too, since it is the key that
    decrypts Akool's callbacks. Without it the row gets the plain ``webhook_url`` (warned once at
    the start of the run) and an uncertain row cannot resolve from its callback."""
    from akool_flows.webhook.intents import intent_url

    secret = _callback_secret(run)
    assert run.opts.webhook_url
    return intent_url(run.opts.webhook_url, batch_intent_key(row_key), secret) if secret else run.opts.webhook_url


def _resolve_from_callbacks(run: Run, known: dict[str, LedgerRow]) -> int:
    """Uncertain rows whose create's own callback path named a job: attach it, pay nothing again."""
    lookup = getattr(run.opts.events, "jobs_for_intents", None)
    uncertain = {batch_intent_key(k): k for k, r in known.items() if r.state in ("uncertain", "intent")}
    if lookup is None or not uncertain:
        return 0
    try:
        found = lookup(list(uncertain))
    except Exception as exc:  # noqa: BLE001 - then they stay uncertain, as without webhooks
        log.warning("could not look up callbacks of uncertain rows: %s", type(exc).__name__)
        return 0
    resolved = sum(run.ledger.resolve_intent(run.batch_id, uncertain[key], job_id) for key, job_id in found.items())
    if resolved:
        log.info("%d uncertain row(s) resolved from their webhooks: attached, not sent again", resolved)
    return resolved


def load_row(run: Run, i: int, row: LedgerRow, *, resumed: bool) -> None:
    """Take over what the ledger knows of row ``i``: from a previous run (``resumed``) or from
    another batch's identical request adopted just now (not already paid by this batch)."""
    rows, budget = run.rows, run.budget
    rows.attempt_at[i] = row.attempt_at
    rows.note[i] = row.note
    if row.job_id:
        rows.job_id[i] = row.job_id
        rows.submitted_at[i] = row.submitted_at
        rows.earlier[i] = True
        run.submitted_count += 1
    if row.artifacts:
        rows.artifacts[i] = row.artifact_data
    est = run.est(i)
    if row.state in ("completed", "failed"):
        data = row.result_data
        code = row.status_code or (3 if row.state == "completed" else 4)
        rows.final[i] = JobStatus(job_id=row.job_id or "", kind=run.kind.name, state=row.state, status_code=code,
                                  result_urls=tuple(data.get("result_urls") or ()),
                                  conclusion=data.get("conclusion"), detail=data.get("detail"),
                                  credits=row.credits, duration=data.get("duration"),
                                  error_code=row.error_code, error_message=row.error_message)
        rows.finished_at[i] = row.finished_at
        if row.error_message:
            rows.error[i] = (row.error_code, row.error_message)
        if row.job_id:
            paid = row.credits if row.credits is not None else (est if row.state == "completed" else 0.0)
            budget.count_earlier(paid)
        rows.set_outcome(i, row.state)
    elif row.state in ("submitted", "timed_out"):
        budget.count_earlier(est)
        if run.opts.wait:
            run.sched.track(i, row.job_id or "", submitted_at=row.submitted_at or None)
        else:
            rows.set_outcome(i, "submitted")
    elif row.state in ("uncertain", "intent"):
        if run.opts.resubmit_uncertain and resumed:
            rows.note[i] = f"resubmitted after an uncertain create attempt at {iso(row.attempt_at)}"
            run.sched.queue.append(i)
        else:
            budget.count_earlier(est)
            rows.error[i] = (row.error_code, row.error_message or "create call outcome unknown")
            rows.set_outcome(i, "uncertain")
    else:  # pending
        run.sched.queue.append(i)
