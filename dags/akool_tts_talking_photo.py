"""TTS -> talking photo: speak a script with a stock voice, then animate a portrait with it.

Both waits are deferrable: the worker slots are free while Akool renders; the triggerer
polls (or completes from webhooks when the ``akool_default`` connection names a receiver).
The talking photo's ``audio_url`` is the TTS task's result URL, passed through XCom.

Trigger it with other inputs: ``airflow dags trigger akool_tts_talking_photo
--conf '{"script": "...", "photo_url": "https://..."}'``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from akool_flows.airflow.operators import AkoolTalkingPhotoOperator, AkoolTtsOperator

POLL_SECONDS = float(os.environ.get("AKOOL_EXAMPLE_POLL_SECONDS", "5"))

with DAG(
    dag_id="akool_tts_talking_photo",
    description="Text to speech, then a talking photo speaking it",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["akool", "example"],
    doc_md=__doc__,
    params={
        "script": Param("Welcome to our spring collection. Every piece is made to last.", type="string",
                        minLength=1, description="What the photo says"),
        "voice_id": Param("LcfcDJNUP1GQjkzn1xUU", type="string", description="A voice_id from the voice list"),
        "photo_url": Param("https://drz0f01yeq1cx.cloudfront.net/1688098804494-e7ca71c3-4266-4ee4-bcbb-"
                           "ddd1ea490e75-9907.jpg", type="string", description="Portrait to animate"),
    },
    default_args={"deferrable": True, "poll_interval": POLL_SECONDS, "timeout": timedelta(hours=2),
                  "retries": 2, "retry_delay": timedelta(minutes=1)},
):
    speak = AkoolTtsOperator(
        task_id="speak",
        input_text="{{ params.script }}",
        voice_id="{{ params.voice_id }}",
        rate="100%",
    )
    animate = AkoolTalkingPhotoOperator(
        task_id="animate",
        talking_photo_url="{{ params.photo_url }}",
        # The TTS task's one XCom is its result dict: take its URL (and depend on it explicitly).
        audio_url="{{ ti.xcom_pull(task_ids='speak')['result_url'] }}",
    )
    speak >> animate
