"""`AkoolJobSensor`: wait for an Akool job that was submitted elsewhere.

Use it downstream of an operator with ``wait_for_completion=False`` (submit now, wait in a
later task or another DAG), or for a job id that came from outside Airflow::

    submit = AkoolVideoTranslationOperator(task_id="submit", url=VIDEO, source_language="en",
                                           language="fr", wait_for_completion=False)
    done = AkoolJobSensor(task_id="done", kind="video_translation",
                          job_id="{{ ti.xcom_pull('submit')['job_id'] }}", deferrable=True, poke_interval=30)
    submit >> done
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException

from akool_flows.airflow.hooks import AkoolHook
from akool_flows.airflow.outcomes import finished_result
from akool_flows.api.errors import ValidationError
from akool_flows.api.jobs import JobStatus
from akool_flows.api.kinds import get_kind

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["AkoolJobSensor"]


class AkoolJobSensor(BaseSensorOperator):
    """Succeed when the Akool job `job_id` completes; fail (with Akool's code and message) when
    it fails. The XCom value is the job's result dict, as the operators return it.

    :param kind: the job's kind (the status endpoint differs per kind).
    :param job_id: the job's ``_id`` (templated; an XComArg works).
    :param akool_conn_id: the ``akool`` connection.
    :param deferrable: wait on the triggerer instead of poking from a worker (default:
        ``[operators] default_deferrable``). ``poke_interval`` is the trigger's poll interval
        and ``timeout`` its deadline.
    :param fail_on_job_failure: False makes a failed job a successful sensor whose XCom
        says ``state: failed`` (default True: the sensor fails).
    :param use_webhook: while deferred, also finish from the webhook event store named by the
        connection (the job must have been created with the receiver's ``webhookUrl``); what
        a callback does not carry (verdict, credits) still comes from one status call.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#ede7ff"

    def __init__(self, *, kind: str, job_id: str, akool_conn_id: str = AkoolHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 fail_on_job_failure: bool = True, use_webhook: bool = True,
                 poke_interval: float | timedelta = 30, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.kind = get_kind(kind).name
        self.job_id = job_id
        self.akool_conn_id = akool_conn_id
        self.deferrable = deferrable
        self.fail_on_job_failure = fail_on_job_failure
        self.use_webhook = use_webhook

    @cached_property
    def hook(self) -> AkoolHook:
        return AkoolHook(self.akool_conn_id)

    def _job_id(self) -> str:
        if not isinstance(self.job_id, str) or not self.job_id.strip():
            raise ValidationError(f"job_id must render to a non-empty string, got {self.job_id!r}", field="job_id")
        return self.job_id.strip()

    def _result(self, status: JobStatus | dict[str, Any]) -> dict[str, Any]:
        return finished_result(status, fail_on_failure=self.fail_on_job_failure)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from akool_flows.airflow.triggers import AkoolJobTrigger

        self.defer(
            trigger=AkoolJobTrigger(kind=self.kind, job_ids=[self._job_id()], akool_conn_id=self.akool_conn_id,
                                    poll_interval=self.poke_interval, end_time=time.time() + self.timeout,
                                    use_webhook_store=self.use_webhook),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 300),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        with self.hook.get_client() as client:
            status = client.status(self.kind, self._job_id())
        self.log.info("%s job %s: %s", self.kind, status.job_id, status.state)
        return PokeReturnValue(is_done=status.done, xcom_value=self._result(status) if status.done else None)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        jobs = event.get("jobs") or []
        if event.get("status") in ("success", "failed") and jobs:
            return self._result(jobs[0])
        raise AirflowException(f"waiting for {self.kind} job {self.job_id} failed: {event.get('message')}")
