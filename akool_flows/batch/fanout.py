"""Fan-out helpers for the catalog case: one input row becomes one job per target.

``translate_catalog(videos, "url", "en", ["fr", "de"])`` -> a row per video x language, ready for
``plan_batch(..., "video_translation")``; ``tts_grid(texts, voices)`` -> a row per text x voice.
The input's own columns are kept on every output row, so results can be joined back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from akool_flows.batch.errors import BatchInputError

__all__ = ["translate_catalog", "tts_grid", "fan_out"]


def fan_out(df: pd.DataFrame, column: str, values: Sequence[Any]) -> pd.DataFrame:
    """Every row of ``df`` once per value, the value in ``column`` (rows outer, values inner)."""
    if not isinstance(df, pd.DataFrame):
        raise BatchInputError(f"expected a DataFrame, got {type(df).__name__}", field="df")
    values = list(values)
    if not values:
        raise BatchInputError(f"give at least one value for {column!r}", field=column)
    if column in df.columns:
        raise BatchInputError(f"the input already has a column {column!r}; rename it first", field=column)
    out = df.loc[df.index.repeat(len(values))].reset_index(drop=True)
    out[column] = values * len(df)
    return out


def _language_codes(client: Any, languages: Iterable[Any] | None) -> set[str] | None:
    if languages is None and client is not None:
        from akool_flows.api.client import AsyncAkoolClient

        if isinstance(client, AsyncAkoolClient):
            raise BatchInputError("translate_catalog is synchronous: pass languages=await client.languages() "
                                  "instead of an async client", field="client")
        languages = client.languages()
    if languages is None:
        return None
    codes = set()
    for item in languages:
        code = item.get("lang_code") if isinstance(item, Mapping) else item
        if isinstance(code, str) and code:
            codes.add(code)
    return codes


def translate_catalog(df: pd.DataFrame, url_column: str, source_language: str, targets: Sequence[str] | str,
                      lipsync: bool = False, *, client: Any = None,
                      languages: Iterable[Any] | None = None, one_create_per_video: bool = False) -> pd.DataFrame:
    """Rows x target languages for ``video_translation``: columns ``url``, ``source_language``,
    ``language``, ``lipsync`` plus the input's columns.

    ``one_create_per_video=True`` keeps one row per video with every target in one ``language``
    ("fr,de,ja"): one create call per video, Akool answering one job per language; the batch
    still reports (and records) one result row per video and language, numbered by video.

    With ``client`` (a sync `AkoolClient`) or ``languages`` (``client.languages()``'s list or plain
    codes), the source and every target are checked against Akool's language list first.
    """
    if not isinstance(df, pd.DataFrame):
        raise BatchInputError(f"expected a DataFrame, got {type(df).__name__}", field="df")
    if url_column not in df.columns:
        raise BatchInputError(f"url column {url_column!r} is not in the input; columns: "
                              f"{', '.join(map(str, df.columns)) or '(none)'}", field="url_column")
    if isinstance(targets, str):
        targets = [t for t in (p.strip() for p in targets.split(",")) if t]
    targets = list(dict.fromkeys(t.strip() for t in targets if isinstance(t, str) and t.strip()))
    if not targets:
        raise BatchInputError("give at least one target language, e.g. ['fr', 'de']", field="targets")
    if not isinstance(source_language, str) or not source_language.strip():
        raise BatchInputError("source_language is required, e.g. 'en'", field="source_language")
    codes = _language_codes(client, languages)
    if codes is not None:
        bad = [t for t in [source_language, *targets] if t not in codes]
        if bad:
            raise BatchInputError(f"language(s) {', '.join(map(repr, bad))} not in Akool's language list; "
                                  f"allowed: {', '.join(sorted(codes))}", field="targets")
    same = [t for t in targets if t == source_language]
    if same:
        raise BatchInputError(f"target {same[0]!r} is the source language", field="targets")
    base = df.copy()
    for col in ("url", "source_language", "lipsync", "language"):
        if col in base.columns and col != url_column:
            base = base.rename(columns={col: f"input_{col}"})
    if url_column != "url":
        base["url"] = base[url_column]
    base["source_language"] = source_language
    base["lipsync"] = bool(lipsync)
    if one_create_per_video:
        base["language"] = ",".join(targets)
        return base
    return fan_out(base, "language", targets)


def tts_grid(texts: Sequence[str] | pd.Series, voices: Sequence[str], rate: str | None = None) -> pd.DataFrame:
    """Every text spoken by every voice: columns ``input_text``, ``voice_id`` (and ``rate``)."""
    texts = list(texts)
    voices = list(dict.fromkeys(voices))
    if not texts:
        raise BatchInputError("give at least one text", field="texts")
    if not voices:
        raise BatchInputError("give at least one voice_id", field="voices")
    df = fan_out(pd.DataFrame({"input_text": texts}), "voice_id", voices)
    if rate is not None:
        df["rate"] = rate
    return df
