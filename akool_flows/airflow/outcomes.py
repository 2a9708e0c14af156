"""What a finished job turns into in Airflow: a small XCom dict, or one exception with Akool's reason.

The operators (waiting in the worker or resuming from the trigger) and the sensor all end a
job here, so a failed job reads the same whichever path saw it finish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException

from akool_flows.airflow.state import STATE_KEY, SubmissionRecord
from akool_flows.api.jobs import Job, JobStatus, Refusal

__all__ = ["AkoolJobFailedException", "finished_result", "finished_results", "job_failure", "job_from_parts",
           "job_result", "part_results", "parts_of", "resumed_parts"]


class AkoolJobFailedException(AirflowException):
    """An Akool job ended in status 4 (failed); carries Akool's code and message."""

    def __init__(self, message: str, *, job_id: str | None = None, kind: str | None = None,
                 code: int | None = None, akool_message: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.kind = kind
        self.code = code
        self.akool_message = akool_message


def job_result(status: JobStatus | Mapping[str, Any]) -> dict[str, Any]:
    """The XCom value of a finished job: small JSON, no raw payload, no secrets."""
    out = status.to_dict() if isinstance(status, JobStatus) else dict(status)
    urls = list(out.get("result_urls") or [])
    out["result_urls"] = urls
    out["result_url"] = urls[0] if urls else None
    return out


def job_failure(status: JobStatus | Mapping[str, Any]) -> AkoolJobFailedException:
    """The exception for a failed job (a status, or its dict as XCom and trigger events carry it)."""
    r = job_result(status)
    return AkoolJobFailedException(
        f"{r.get('kind')} job {r.get('job_id')} failed: [{r.get('error_code')}] "
        f"{r.get('error_message') or 'no message from Akool'}", job_id=r.get("job_id"), kind=r.get("kind"),
        code=r.get("error_code"), akool_message=r.get("error_message"))


def finished_result(status: JobStatus | Mapping[str, Any], *, fail_on_failure: bool = True) -> dict[str, Any]:
    """`job_result` of a finished job; raises `job_failure` for a failed one unless told not to."""
    result = job_result(status)
    if fail_on_failure and result.get("state") == "failed":
        raise job_failure(result)
    return result


# --- a create call that made several jobs (a video translation into "fr,de,ja") -----------------

def parts_of(job: Job) -> list[dict[str, Any]]:
    """Every part of `job`'s create call as JSON (task state, trigger kwargs): its jobs
    (``job_id``, ``task_id``, ``language``), then the refused parts (``job_id`` None, ``code``,
    ``message``)."""
    return ([{"job_id": j.job_id, "task_id": j.task_id, "language": j.language} for j in job.jobs]
            + [{"job_id": None, **r.to_dict()} for r in job.refused])


def job_from_parts(kind: str, parts: Sequence[Mapping[str, Any]]) -> Job:
    """The `Job` that `parts_of` described (for a retry that reattaches to it)."""
    jobs = tuple(Job(p["job_id"], kind, task_id=p.get("task_id"), language=p.get("language"))
                 for p in parts if p.get("job_id"))
    refused = tuple(Refusal(p.get("code"), str(p.get("message") or ""), p.get("language"))
                    for p in parts if not p.get("job_id"))
    if not jobs:
        raise ValueError("parts name no job")
    first = jobs[0]
    return Job(first.job_id, kind, task_id=first.task_id, language=first.language, parts=jobs, refused=refused)


def part_results(kind: str, parts: Sequence[Mapping[str, Any]],
                 statuses: Mapping[str, JobStatus | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One XCom result per part, each with its ``language``: a job's `job_result` (its last known
    state when `statuses` lacks it), a refused part as a failed result without a job id."""
    out = []
    for p in parts:
        if p.get("job_id"):
            st = statuses.get(p["job_id"]) or {"job_id": p["job_id"], "kind": kind, "state": "queued"}
            out.append({**job_result(st), "language": p.get("language")})
        else:
            out.append({**job_result({"job_id": None, "kind": kind, "state": "failed", "error_code": p.get("code"),
                                      "error_message": p.get("message")}), "language": p.get("language")})
    return out


def finished_results(results: Sequence[Mapping[str, Any]], *, fail_on_failure: bool = True, ti: Any = None,
                     log: Any = None) -> dict[str, Any]:
    """The XCom value of a create that made several jobs: the first job's result at the top (as
    for one job) and ``results``, one per part (a refused part is a failed result without a job
    id); raises when any part failed unless told not to. With `ti`, a failed task keeps
    ``results`` as an XCom of its own (a failed task has no ``return_value``); a task that succeeds
    writes only its return value. `log` gets a line per part."""
    for r in results if log is not None else ():
        log.info("%s %s: %s job %s [%s] %s", r.get("kind"), r.get("language"), r.get("state"), r.get("job_id"),
                 r.get("error_code"), r.get("error_message") or "")
    first = next((r for r in results if r.get("job_id")), results[0])
    failed = [r for r in results if r.get("state") == "failed"]
    if fail_on_failure and failed:
        if ti is not None:
            ti.xcom_push(key="results", value=list(results))
        r = failed[0]
        raise AkoolJobFailedException(
            f"{len(failed)} of {len(results)} {r.get('kind')} jobs failed; {r.get('language') or r.get('job_id')}: "
            f"[{r.get('error_code')}] {r.get('error_message') or 'no message from Akool'}",
            job_id=r.get("job_id"), kind=r.get("kind"), code=r.get("error_code"), akool_message=r.get("error_message"))
    return {**dict(first), "results": [dict(r) for r in results]}


def resumed_parts(parts: list[dict[str, Any]] | None, store: Any,
                  jobs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The parts a deferred task waited for, when it waited for several: the ones handed back by
    the triggerer, else (``dag.test()`` drops them) the task's record, else the event's jobs."""
    if parts:
        return parts
    record = SubmissionRecord.from_json(store.get(STATE_KEY)) if store is not None else None
    if record is not None and record.parts:
        return record.parts
    return [{"job_id": j["job_id"], "language": None} for j in jobs] if len(jobs) > 1 else None
