"""DAGs for the provider tests only (a second DAG bundle; never deployed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from akool_flows.airflow.batch import AkoolBatchOperator
from akool_flows.airflow.operators import (AkoolFaceswapImageOperator, AkoolJobOperator, AkoolModerationOperator,
                                          AkoolTalkingPhotoOperator, AkoolTtsOperator)
from akool_flows.airflow.sensors import AkoolJobSensor

PHOTO = "https://example.com/portrait.jpg"
AUDIO = "https://example.com/voice.mp3"

# Killed by Airflow (execution_timeout) while waiting in the worker, after the job id was
# recorded: the retry must reattach to the job, not create a second one.
with DAG(dag_id="akool_test_killed_while_waiting", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolTalkingPhotoOperator(
        task_id="animate", talking_photo_url=PHOTO, audio_url=AUDIO, deferrable=False, poll_interval=0.2,
        execution_timeout=timedelta(seconds=1.5), retries=4, retry_delay=timedelta(seconds=0.5))

# Killed while the create call is in flight (the sandbox delays it): the intent is recorded,
# the id never is. The retry must refuse to pay again.
with DAG(dag_id="akool_test_killed_during_create", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolTtsOperator(
        task_id="speak", input_text="Hello there", voice_id="LcfcDJNUP1GQjkzn1xUU", deferrable=False,
        poll_interval=0.2, execution_timeout=timedelta(seconds=1), retries=1, retry_delay=timedelta(seconds=0.5))

# The same, but the task consents to paying again.
with DAG(dag_id="akool_test_killed_during_create_resubmit", schedule=None, start_date=datetime(2026, 1, 1),
         catchup=False):
    AkoolTtsOperator(
        task_id="speak", input_text="Hello there", voice_id="LcfcDJNUP1GQjkzn1xUU", deferrable=False,
        poll_interval=0.2, execution_timeout=timedelta(seconds=1), retries=1, retry_delay=timedelta(seconds=0.5),
        resubmit_uncertain=True)

# Submit without waiting; a deferrable sensor waits; a failing job fails with Akool's reason.
with DAG(dag_id="akool_test_submit_then_sense", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    submit = AkoolTalkingPhotoOperator(task_id="submit", talking_photo_url=PHOTO, audio_url=AUDIO,
                                       wait_for_completion=False)
    submit >> AkoolJobSensor(task_id="sense", kind="talking_photo", job_id="{{ ti.xcom_pull('submit')['job_id'] }}",
                             deferrable=True, poke_interval=0.2, timeout=60)

with DAG(dag_id="akool_test_job_fails", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolTalkingPhotoOperator(task_id="animate", talking_photo_url="https://example.com/sandbox-fail.jpg",
                              audio_url=AUDIO, deferrable=True, poll_interval=0.2)

# Completes from Akool's callback through the plugin's receiver: the poll interval is far
# longer than the job, and the timeout fails the task if the webhook never arrives.
with DAG(dag_id="akool_test_webhook", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolTalkingPhotoOperator(task_id="animate", talking_photo_url=PHOTO, audio_url=AUDIO, deferrable=True,
                              poll_interval=30, timeout=timedelta(seconds=25))

# One create, three languages (and fields the docs do not list), waited for on the triggerer.
with DAG(dag_id="akool_test_translate_languages", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolJobOperator(task_id="translate", kind="video_translation", deferrable=True, poll_interval=0.2,
                     fields={"url": "https://example.com/talk.mp4", "source_language": "DEFAULT",
                             "language": "{{ params.languages }}", "speaker_num": 0, "remove_bgm": True},
                     params={"languages": "fr,de,ja"})

# A verdict completed by webhook: Akool's callback carries no conclusion and no credits, so the
# poll interval is far longer than the job and only the status call made on the callback can
# fill them in time.
with DAG(dag_id="akool_test_webhook_moderation", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolModerationOperator(task_id="moderate", content="Have a great day, everyone!", type=4, language="en",
                            deferrable=True, poll_interval=30, timeout=timedelta(seconds=25))

# Killed while the token exchange is in flight (the sandbox delays getToken): the intent is
# recorded but the create request never left the worker. The retry must submit by itself.
# retries=2: on a loaded machine the kill can land before the token exchange, and then the slow
# exchange kills the next try instead.
with DAG(dag_id="akool_test_killed_before_sending", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AkoolTtsOperator(
        task_id="speak", input_text="Hello there", voice_id="LcfcDJNUP1GQjkzn1xUU", deferrable=False,
        poll_interval=0.2, execution_timeout=timedelta(seconds=1), retries=2, retry_delay=timedelta(seconds=0.5))

# Many deferred tasks waiting on webhooks at once (the distributed-setup test): the poll
# interval is far beyond the job time, so the callbacks finish them.
with DAG(dag_id="akool_test_many_deferred", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         max_active_tasks=1000, params={"n": 500}):
    AkoolModerationOperator.partial(task_id="moderate", type=4, language="en", deferrable=True, poll_interval=120,
                                    timeout=timedelta(minutes=10), max_active_tis_per_dagrun=1000).expand(
        content=[f"comment number {i}, have a nice day" for i in range(int(__import__("os").environ.get(
            "AKOOL_TEST_DEFERRED_TASKS", "500")))])

# One new face swapped onto many posters (dynamic task mapping): the shared face is detected once
# for all the tasks, each poster once. Also the creates/s measurement of bench/README.md.
with DAG(dag_id="akool_test_faceswap_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         max_active_tasks=256):
    AkoolFaceswapImageOperator.partial(task_id="swap", sourceImage=["https://example.com/mapped-new-face.jpg"],
                                       deferrable=False, poll_interval=0.2, max_active_tis_per_dagrun=256).expand(
        modifyImage=[f"https://example.com/poster-{i}.jpg" for i in range(int(__import__("os").environ.get(
            "AKOOL_TEST_FACESWAP_TASKS", "4")))])

# The same without webhooks: the triggerer polls (bench/bench_airflow_celery.py, poll-only figures).
with DAG(dag_id="akool_test_many_polled", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         max_active_tasks=1000):
    AkoolModerationOperator.partial(task_id="moderate", type=4, language="en", deferrable=True, poll_interval=15,
                                    use_webhook=False, timeout=timedelta(minutes=20),
                                    max_active_tis_per_dagrun=1000).expand(
        content=[f"polled comment number {i}, have a nice day" for i in range(int(__import__("os").environ.get(
            "AKOOL_TEST_DEFERRED_TASKS", "500")))])


def _sharded_input() -> str:
    """A comment file with repeats spread over it (every 40th row copies an earlier one), so
    identical requests sit in different positions: sharding must still send each once."""
    import os

    import pandas as pd

    n = int(os.environ.get("AKOOL_TEST_BATCH_ROWS", "5000"))
    texts = [f"catalog comment {i}" if i % 40 or i == 0 else f"catalog comment {i // 3}" for i in range(n)]
    out = os.path.join(os.environ.get("AKOOL_EXAMPLE_DATA_DIR", "/tmp"), "sharded", "comments.csv")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    pd.DataFrame({"content": texts}).to_csv(out, index=False)
    return out


# A big input in shards over every Celery worker, waiting on the triggerer (webhooks on); the
# bench kills a worker mid-flight. A killed shard's retry resumes from the shared ledger.
with DAG(dag_id="akool_test_sharded_batch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         max_active_tasks=64):
    @task
    def write_input() -> str:
        return _sharded_input()

    AkoolBatchOperator.partial(
        task_id="moderate", kind="moderation", input_path=write_input(),
        defaults={"type": 4, "language": "en"}, shard_count=6, deferrable=True, poll_interval=30,
        retries=3, retry_delay=timedelta(seconds=5),
    ).expand(shard_index=list(range(6)))
