"""A video catalog translated into many languages: one deferrable task per (video, language).

``plan`` checks the target languages against Akool's language list and expands the catalog
into (video, language) pairs; ``translate`` is mapped over them with dynamic task mapping
(each mapped task submits one job and waits on the triggerer, so hundreds of translations
in flight hold no worker slot); ``catalog`` collects the translated URLs per video.

For thousands of videos prefer `AkoolBatchOperator` over a CSV of pairs, sharded with
``expand(shard_index=...)``: one task per shard instead of one per job.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from akool_flows.airflow.hooks import AkoolHook
from akool_flows.airflow.operators import AkoolVideoTranslationOperator

POLL_SECONDS = float(os.environ.get("AKOOL_EXAMPLE_POLL_SECONDS", "15"))

with DAG(
    dag_id="akool_catalog_translation",
    description="Translate every catalog video into every target language (dynamic task mapping)",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["akool", "example", "video"],
    doc_md=__doc__,
    params={
        "videos": Param([
            "https://drz0f01yeq1cx.cloudfront.net/1710470596011-facebook.mp4",
            "https://drz0f01yeq1cx.cloudfront.net/1721868487350-6b4cc614038643eb9f842f4ddc3d5d56.mp4",
        ], type="array", items={"type": "string"}, minItems=1, description="Catalog video URLs"),
        "source_language": Param("en", type="string", description="Language spoken in the videos"),
        "languages": Param(["fr", "es", "de", "ja"], type="array", items={"type": "string"}, minItems=1,
                           description="Target language codes (Akool's language list)"),
        "lipsync": Param(False, type="boolean", description="Also lip-sync the translated speech"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
):

    @task
    def plan(params: dict) -> list[dict]:
        """(video, language) pairs, after checking the languages against Akool's list."""
        import pandas as pd

        from akool_flows.batch import BatchInputError, translate_catalog

        with AkoolHook().get_client() as client:
            languages = client.languages()
        try:
            pairs = translate_catalog(pd.DataFrame({"url": params["videos"]}), "url", params["source_language"],
                                      params["languages"], bool(params["lipsync"]), languages=languages)
        except BatchInputError as exc:  # an unknown language, or a target equal to the source
            raise AirflowFailException(str(exc)) from None
        print(f"{len(pairs)} translations: {len(params['videos'])} videos x {len(params['languages'])} languages")
        return pairs[["url", "source_language", "language", "lipsync"]].to_dict("records")

    pairs = plan()
    translate = AkoolVideoTranslationOperator.partial(
        task_id="translate",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=timedelta(hours=4),
        map_index_template="{{ task.language }}: {{ task.url.rsplit('/', 1)[-1] }}",
    ).expand_kwargs(pairs)

    @task
    def catalog(results: list[dict], pairs: list[dict]) -> dict:
        """{video: {language: translated video URL}} plus counts and credits."""
        table: dict[str, dict[str, str | None]] = {}
        credits = 0.0
        for pair, result in zip(pairs, results):  # both in map-index order
            table.setdefault(pair["url"], {})[pair["language"]] = result.get("result_url")
            credits += result.get("credits") or 0.0
        return {"videos": len(table), "translations": sum(len(v) for v in table.values()),
                "credits": round(credits, 4), "catalog": table}

    catalog(translate.output, pairs)
