"""What a finished job turns into in Airflow: a small XCom dict, or one exception with Akool's reason.

The operators (waiting in the worker or resuming from the trigger) and the sensor all end a
job here, so a failed job reads the same whichever path saw it finish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException

from akool_flows.api.jobs import JobStatus

__all__ = ["AkoolJobFailedException", "finished_result", "job_failure", "job_result"]


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
