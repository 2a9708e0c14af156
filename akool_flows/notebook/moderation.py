"""`ModerationApp`: moderate a DataFrame column with Jarvis, see what it costs, run, export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

from akool_flows.api.models import MODERATION_TYPES
from akool_flows.notebook import render
from akool_flows.notebook.base import PROBLEM_OUTCOMES, BatchAppBase
from akool_flows.notebook.fields import error_label
from akool_flows.notebook.frames import check_input_frame

__all__ = ["ModerationApp"]

_TYPE_CODES = {name: code for code, name in MODERATION_TYPES.items()}  # "text" -> 4 ...
_TYPE_OPTIONS = [("text", 4), ("image", 1), ("video", 2), ("audio", 3)]
# Suggestions only: any ISO-639-1 code may be typed.
_LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "nl", "ja", "ko", "zh", "hi", "ar", "ru", "tr", "pl", "sv"]
_NO_DURATION = "(none)"


def _content_type(value: int | str) -> int:
    if isinstance(value, str) and value.lower() in _TYPE_CODES:
        return _TYPE_CODES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in MODERATION_TYPES:
        return value
    raise ValueError(f"content_type must be one of text, image, video, audio (or 4, 1, 2, 3), got {value!r}")


class ModerationApp(BatchAppBase):
    """Jarvis moderation over one column of a DataFrame.

    Pick the content column, the content type, the language and (optionally) your own rules in
    words; the app validates every row and prices it from the docs' Jarvis table before anything
    is sent. Run / Cancel work without blocking the kernel; results show each row's conclusion
    (Compliant / Non-Compliant / Unknown) and Akool's reasons. ``app.results`` is the DataFrame.

        app = ModerationApp(df, content_column="comment", language="en")
        app            # display; click Run
        app.results    # next cell

    Every keyword of the form can be preset; the remaining keywords (``client``, ``ledger``,
    ``concurrency``, ``budget_credits`` ...) are those of every app (see `BatchAppBase`).
    """

    title = "Content moderation (Jarvis)"
    slug = "moderation"

    def __init__(self, df: pd.DataFrame, *, content_column: str | None = None, content_type: int | str = "text",
                 language: str | None = None, rules: str | None = None, duration_column: str | None = None,
                 **options: Any) -> None:
        check_input_frame(df, needs="moderation needs a column with the content",
                          content_column=content_column, duration_column=duration_column)
        self._initial = {
            "content_column": content_column or _guess_content_column(df),
            "content_type": _content_type(content_type),
            "language": language or "",
            "rules": rules or "",
            "duration_column": duration_column or _NO_DURATION,
        }
        super().__init__(df, kind="moderation", **options)

    # --- form --------------------------------------------------------------------------------

    def _build_form(self) -> list[w.Widget]:
        init = self._initial
        style = {"description_width": "110px"}
        self.content_column = w.Dropdown(options=[(str(c), c) for c in self.df.columns], value=init["content_column"],
                                         description="Content column", style=style)
        self.content_type = w.Dropdown(options=_TYPE_OPTIONS, value=init["content_type"], description="Content type",
                                       style=style)
        # continuous_update=False: re-validating a large table on every keystroke would lag typing.
        self.language = w.Combobox(value=init["language"], options=_LANGUAGES, ensure_option=False,
                                   continuous_update=False,
                                   placeholder="ISO-639-1, e.g. en (blank: let Jarvis guess)",
                                   description="Language", style=style)
        self.rules = w.Textarea(value=init["rules"], continuous_update=False,
                                placeholder="Optional: your own rules in words, e.g. 'flag any mention of competitors'",
                                description="Custom rules", style=style, layout=w.Layout(width="520px", height="56px"))
        numeric = [(str(c), c) for c in self.df.columns if pd.api.types.is_numeric_dtype(self.df[c])]
        self.duration_column = w.Dropdown(options=[(_NO_DURATION, _NO_DURATION), *numeric],
                                          value=init["duration_column"], description="Seconds column", style=style,
                                          tooltip="Media length in seconds: audio/video are priced per minute")
        for widget, css in ((self.content_column, "akool-content-column"), (self.content_type, "akool-content-type"),
                            (self.language, "akool-language"), (self.rules, "akool-rules"),
                            (self.duration_column, "akool-duration-column")):
            widget.add_class(css)
        self._watch(self.content_column, self.content_type, self.language, self.rules, self.duration_column)
        self.content_type.observe(lambda _c: self._show_duration(), names="value")
        self._show_duration()
        self._errors = {"type": error_label(), "language": error_label(), "input": error_label()}
        row = {"flex_flow": "row wrap", "align_items": "center", "max_width": "100%"}
        return [w.HBox([self.content_column, self.content_type, self._errors["type"]], layout=w.Layout(**row)),
                w.HBox([self.language, self._errors["language"]], layout=w.Layout(**row)),
                w.HBox([self.rules, self._errors["input"]], layout=w.Layout(**row)), self.duration_column]

    def _field_error_labels(self) -> dict[str, w.HTML]:
        return self._errors

    def _show_duration(self) -> None:
        # Only audio and video are priced by length; hide the knob otherwise.
        self.duration_column.layout.display = None if self.content_type.value in (2, 3) else "none"

    def _plan_options(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {"type": self.content_type.value}
        language = (self.language.value or "").strip()
        if language:
            defaults["language"] = language
        rules = (self.rules.value or "").strip()
        if rules:
            defaults["input"] = rules
        durations = self.duration_column.value
        return {"columns": {"content": self.content_column.value}, "defaults": defaults,
                "durations": None if durations == _NO_DURATION or self.content_type.value not in (2, 3) else durations}

    # --- results -----------------------------------------------------------------------------

    def _answer_columns(self) -> list[str]:
        return ["conclusion", "detail", "outcome", "credits", "paid_in", "error_message"]

    def _table_labels(self) -> dict[str, str]:
        return {**super()._table_labels(), "detail": "reasons"}

    def _filters(self) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
        def conclusion(value: str) -> Callable[[pd.DataFrame], pd.Series]:
            return lambda df: df["conclusion"].eq(value) if "conclusion" in df else pd.Series(False, index=df.index)
        return {
            "all rows": lambda df: pd.Series(True, index=df.index),
            "Non-Compliant": conclusion("Non-Compliant"),
            "Unknown": conclusion("Unknown"),
            "Compliant": conclusion("Compliant"),
            "problems": lambda df: df["outcome"].isin(PROBLEM_OUTCOMES),
        }

    def _charts(self, results: pd.DataFrame) -> str:
        if results.empty:
            return ""
        # A row without a verdict (failed, rejected, cancelled) is counted under its outcome.
        verdict = results["conclusion"].where(results["conclusion"].notna(), results["outcome"]) \
            if "conclusion" in results else results["outcome"]
        labelled = results.assign(_verdict=verdict)
        colors = {**render.OUTCOME_COLORS, **render.CONCLUSION_COLORS}
        return (render.bar_chart_svg(verdict.value_counts().to_dict(), title="Conclusions", colors=colors)
                + render.bar_chart_svg(render.credits_by(labelled, "_verdict"), title="Credits per conclusion",
                                       colors=colors, value_format="{:,.2f}"))


def _guess_content_column(df: pd.DataFrame) -> Any:
    """The column most likely to hold the content: a conventional name, else the first text column."""
    lowered = {str(c).lower(): c for c in df.columns}
    for name in ("content", "text", "comment", "message", "body", "url"):
        if name in lowered:
            return lowered[name]
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            return col
    return df.columns[0]
