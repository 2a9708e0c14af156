"""`CatalogTranslationApp`: translate a catalog of videos into many languages (rows x languages)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd

from akool_flows.notebook import render
from akool_flows.notebook.base import PROBLEM_OUTCOMES, BatchAppBase, _batch
from akool_flows.notebook.frames import check_input_frame

__all__ = ["CatalogTranslationApp", "FALLBACK_LANGUAGES"]

#: Shown when the language list cannot be fetched; a run still validates against Akool.
FALLBACK_LANGUAGES: list[dict[str, str]] = [
    {"lang_code": c, "lang_name": n} for c, n in (
        ("en", "English"), ("es", "Spanish"), ("fr", "French"), ("de", "German"), ("it", "Italian"),
        ("pt", "Portuguese"), ("ja", "Japanese"), ("ko", "Korean"), ("zh", "Chinese (Simplified)"),
        ("hi", "Hindi"), ("ar", "Arabic"), ("ru", "Russian"))]


class CatalogTranslationApp(BatchAppBase):
    """Video translation of every catalog row into every chosen language.

    Pick the URL column, the source language, the target languages (filled from Akool's language
    list) and lipsync on/off. Each input row fans out into one job per target language; the
    estimate, run, progress, results and export are those of every app.

        app = CatalogTranslationApp(catalog, url_column="video_url", source_language="en",
                                    targets=["fr", "de"])
        app            # display; click Run
        app.results    # one row per video x language
    """

    title = "Catalog video translation"
    slug = "translation"

    def __init__(self, df: pd.DataFrame, *, url_column: str | None = None, source_language: str = "en",
                 targets: Sequence[str] = (), lipsync: bool = False,
                 languages: Sequence[dict[str, str]] | None = None, **options: Any) -> None:
        check_input_frame(df, needs="translation needs a column of video URLs", url_column=url_column)
        if isinstance(targets, str):
            targets = [targets]
        self._initial = {"url_column": url_column if url_column is not None else _guess_url_column(df),
                         "source_language": source_language, "targets": list(targets), "lipsync": bool(lipsync)}
        #: ``[{"lang_code", "lang_name"}]`` offered in the pickers.
        self.languages: list[dict[str, str]] = list(languages) if languages else []
        self._languages_note = ""
        self._explicit_languages = bool(languages)
        super().__init__(df, kind="video_translation", **options)

    # --- language list -----------------------------------------------------------------------

    def _fetch_languages(self) -> None:
        """Fill `languages` from Akool (sync client), or from a task on the running loop when the
        user passed an async client; fall back to common codes and say so."""
        if self._explicit_languages:
            return
        pair = self.connection.sync_client()
        if pair is None:
            self.languages = list(FALLBACK_LANGUAGES)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._languages_note = "common languages shown (an async client cannot be used outside a loop)"
                return
            self._languages_note = "loading the language list…"
            # Held: the loop keeps only a weak reference to a task.
            self._languages_task = loop.create_task(self._fetch_languages_async())
            return
        client, owned = pair
        try:
            self.languages = _clean(client.languages())
        except Exception as exc:  # noqa: BLE001 - degrade to common codes, say why
            self.languages = list(FALLBACK_LANGUAGES)
            self._languages_note = f"could not load Akool's language list ({type(exc).__name__}); common codes shown"
        finally:
            if owned:
                client.close()

    async def _fetch_languages_async(self) -> None:
        assert self.connection.client is not None
        try:
            self.languages = _clean(await self.connection.client.languages())
            self._languages_note = ""
        except Exception as exc:  # noqa: BLE001
            self._languages_note = f"could not load Akool's language list ({type(exc).__name__}); common codes shown"
        self._fill_language_options()
        self.estimate()

    def _language_options(self) -> list[tuple[str, str]]:
        return [(f"{lang['lang_name']} ({lang['lang_code']})", lang["lang_code"]) for lang in self.languages]

    def _fill_language_options(self) -> None:
        options = self._language_options()
        codes = {code for _, code in options}
        source = self.source_language.value
        targets = [t for t in self.targets.value if t in codes]
        self.source_language.options = options
        self.source_language.value = source if source in codes else (options[0][1] if options else None)
        self.targets.options = options
        self.targets.value = tuple(targets)
        self._languages_html.value = f'<span class="akool-muted">{render.e(self._languages_note)}</span>'

    # --- form --------------------------------------------------------------------------------

    def _build_form(self) -> list[w.Widget]:
        self._fetch_languages()
        init = self._initial
        style = {"description_width": "110px"}
        options = self._language_options()
        codes = [code for _, code in options]
        unknown = [t for t in [init["source_language"], *init["targets"]] if t not in codes]
        if unknown:
            raise ValueError(f"language(s) {', '.join(map(repr, unknown))} not in Akool's language list; "
                             f"allowed: {', '.join(codes)}")
        self.url_column = w.Dropdown(options=[(str(c), c) for c in self.df.columns], value=init["url_column"],
                                     description="URL column", style=style)
        self.source_language = w.Dropdown(options=options, value=init["source_language"],
                                          description="Source language", style=style)
        self.targets = w.SelectMultiple(options=options, value=tuple(init["targets"]), rows=min(8, len(options)),
                                        description="Translate to", style=style, layout=w.Layout(width="360px"))
        self.lipsync = w.Checkbox(value=init["lipsync"], description="Lip sync", indent=False)
        self._languages_html = w.HTML(f'<span class="akool-muted">{render.e(self._languages_note)}</span>')
        for widget, css in ((self.url_column, "akool-url-column"), (self.source_language, "akool-source-language"),
                            (self.targets, "akool-targets"), (self.lipsync, "akool-lipsync")):
            widget.add_class(css)
        self._watch(self.url_column, self.source_language, self.targets, self.lipsync)
        pick_help = w.HTML('<span class="akool-muted akool-multi-help">Several languages: Ctrl-click each '
                           '(⌘-click on a Mac); Shift-click picks a range.</span>')
        row = w.Layout(flex_flow="row wrap", align_items="center", max_width="100%")
        return [w.HBox([self.url_column, self.source_language], layout=row),
                w.HBox([self.targets, w.VBox([pick_help, self.lipsync, self._languages_html])], layout=row)]

    def _plan_options(self) -> dict[str, Any]:
        if not self.targets.value:
            raise ValueError("Choose at least one target language.")
        return {}

    def _plan_input(self, df: pd.DataFrame) -> pd.DataFrame:
        # One row per (video, target language), carrying the catalog's own columns along, plus
        # the catalog row it came from (the fan-out renumbers rows).
        source = df.assign(catalog_row=df.index) if "catalog_row" not in df.columns else df
        return _batch().translate_catalog(source, self.url_column.value, self.source_language.value,
                                          list(self.targets.value), lipsync=bool(self.lipsync.value),
                                          languages=self.languages)

    # --- results -----------------------------------------------------------------------------

    def _row_number_column(self) -> str:
        # One catalog row fans out into one job per language: number by the catalog's row.
        return "catalog_row"

    def _answer_columns(self) -> list[str]:
        return ["outcome", "result_url", "credits", "paid_in", "error_message"]

    def _table_labels(self) -> dict[str, str]:
        return {**super()._table_labels(), "result_url": "translated video"}

    def _filters(self) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
        filters: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
            "all rows": lambda df: pd.Series(True, index=df.index),
            "problems": lambda df: df["outcome"].isin(PROBLEM_OUTCOMES),
            "completed": lambda df: df["outcome"].eq("completed"),
        }
        for code in self.targets.value if hasattr(self, "targets") else ():
            filters[f"language {code}"] = (lambda c: lambda df: df["language"].eq(c))(code)
        return filters

    def _form_changed(self) -> None:
        super()._form_changed()
        # The per-language filters follow the chosen targets.
        current = self.ui.filter.value
        self.ui.filter.options = list(self._filters())
        self.ui.filter.value = current if current in self.ui.filter.options else "all rows"

    def _charts(self, results: pd.DataFrame) -> str:
        if results.empty or "language" not in results:
            return super()._charts(results)
        done = results[results["outcome"].eq("completed")]
        return (render.bar_chart_svg(done["language"].value_counts().to_dict(), title="Completed per language",
                                     colors={})
                + render.bar_chart_svg(render.credits_by(results, "language"), title="Credits per language",
                                       value_format="{:,.2f}"))


def _clean(languages: Any) -> list[dict[str, str]]:
    out = [{"lang_code": str(x["lang_code"]), "lang_name": str(x.get("lang_name") or x["lang_code"])}
           for x in languages or () if isinstance(x, dict) and x.get("lang_code")]
    if not out:
        raise ValueError("empty language list")
    return out


def _guess_url_column(df: pd.DataFrame) -> Any:
    lowered = {str(c).lower(): c for c in df.columns}
    for name in ("url", "video_url", "video", "source_url"):
        if name in lowered:
            return lowered[name]
    for col in df.columns:
        sample = df[col].dropna().astype(str).head(20)
        if len(sample) and sample.str.match(r"^https?://").mean() > 0.5:
            return col
    return df.columns[0]
