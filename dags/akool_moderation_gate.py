"""A moderation gate: only images Jarvis finds compliant go on to a background change.

``moderate`` checks every image (mapped, deferrable); ``compliant`` keeps the images whose
conclusion is ``Compliant`` (non-compliant and undecided ones are logged and stop there);
``change_background`` is mapped over what passed, so nothing is paid for an image that
should not be published. When nothing passes, the background change is skipped.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from akool_flows.airflow.operators import AkoolBackgroundChangeOperator, AkoolModerationOperator

POLL_SECONDS = float(os.environ.get("AKOOL_EXAMPLE_POLL_SECONDS", "5"))

with DAG(
    dag_id="akool_moderation_gate",
    description="Moderate images; only compliant ones get a new background",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["akool", "example", "moderation", "image"],
    doc_md=__doc__,
    params={
        "images": Param([
            "https://drz0f01yeq1cx.cloudfront.net/1711939252580-7e40bd1a-e480-42ed-8585-3f9ffccf6bdb-5822.png",
            "https://drz0f01yeq1cx.cloudfront.net/1712132369637-69a946c0-b2a7-4fe6-92c8-2729b36cc13e-0183.png",
            "https://uploads.example.com/banners/gun-store-weapon-sale.png",
        ], type="array", items={"type": "string"}, minItems=1, description="Product images to publish"),
        "color_code": Param("#c9aafb", type="string", pattern="^#[0-9a-fA-F]{6}$",
                            description="New background colour"),
    },
    default_args={"deferrable": True, "poll_interval": POLL_SECONDS, "retries": 2,
                  "retry_delay": timedelta(minutes=1)},
):

    @task
    def images(params: dict) -> list[str]:
        return list(params["images"])

    moderate = AkoolModerationOperator.partial(
        task_id="moderate",
        type=1,
        map_index_template="{{ task.content.rsplit('/', 1)[-1] }}",
    ).expand(content=images())

    @task
    def compliant(results: list[dict], params: dict) -> list[str]:
        """The images that passed; the others are logged with Jarvis' reasons."""
        passed = []
        for image, result in zip(params["images"], results):
            if result.get("conclusion") == "Compliant":
                passed.append(image)
            else:
                print(f"held back ({result.get('conclusion')}): {image}\n{result.get('detail')}")
        print(f"{len(passed)} of {len(results)} images passed moderation")
        return passed

    AkoolBackgroundChangeOperator.partial(
        task_id="change_background",
        color_code="{{ params.color_code }}",
        canvas_size="3840x3840",
        modify_origin_img_size="3060x3824",
        overlay_origin_x=388,
        overlay_origin_y=8,
        map_index_template="{{ task.origin_img.rsplit('/', 1)[-1] }}",
    ).expand(origin_img=compliant(moderate.output))
