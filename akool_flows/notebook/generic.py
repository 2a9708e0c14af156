"""`BatchApp`: the generic form for any job kind of the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import pandas as pd

from akool_flows.api.kinds import JobKind, get_kind
from akool_flows.notebook import render
from akool_flows.notebook.base import BatchAppBase
from akool_flows.notebook.fields import FieldInput, field_specs, form_values
from akool_flows.notebook.frames import check_input_frame

__all__ = ["BatchApp"]


class BatchApp(BatchAppBase):
    """A batch of any registry kind, its form generated from the kind's request model.

    For each of the docs' fields choose a DataFrame column, a constant for every row, or (for
    optional fields) nothing. Columns named as the docs' fields are picked automatically.

        app = BatchApp(df, "talking_photo", constants={"audio_url": "https://.../voice.mp3"})
        app            # display; click Run
        app.results

    ``columns`` (``{field: column}``) and ``constants`` (``{field: value}``) preset the form.
    """

    slug = "batch"

    def __init__(self, df: pd.DataFrame, kind: str | JobKind, *, columns: Mapping[str, Any] | None = None,
                 constants: Mapping[str, Any] | None = None, **options: Any) -> None:
        k = get_kind(kind)
        names = k.field_names
        for arg, mapping in (("columns", columns or {}), ("constants", constants or {})):
            bad = [n for n in mapping if n not in names]
            if bad:
                raise ValueError(f"{arg}: {', '.join(map(repr, bad))} not {k.name} field(s); "
                                 f"allowed: {', '.join(names)}")
        check_input_frame(df)
        for field_name, column in (columns or {}).items():
            if column not in df.columns:
                raise ValueError(f"columns: column {column!r} (for field {field_name!r}) is not in df; "
                                 f"columns: {', '.join(map(str, df.columns))}")
        self.job_kind = k
        self._preset_columns = dict(columns or {})
        self._preset_constants = dict(constants or {})
        self.title = k.title
        self.slug = k.name
        super().__init__(df, kind=k.name, **options)
        self.ui.root.add_class("akool-batch-app")

    def _build_form(self) -> list[w.Widget]:
        #: One `FieldInput` per request field, by the docs' field name.
        self.fields: dict[str, FieldInput] = {s.name: FieldInput(s, self.df) for s in field_specs(self.job_kind)}
        for name, column in self._preset_columns.items():
            self.fields[name].set_column(column)
        for name, value in self._preset_constants.items():
            self.fields[name].set_constant(value)
        for item in self.fields.values():
            self._watch(item.source, item.value)
        intro = w.HTML(f'<div class="akool-muted">{render.e(self.job_kind.description)} '
                       f'Fields marked * are required; hover a name for the docs\' description.</div>')
        return [intro, *(item.row for item in self.fields.values())]

    def _field_error_labels(self) -> dict[str, w.HTML]:
        return {name: item.error for name, item in self.fields.items()}

    def _plan_options(self) -> dict[str, Any]:
        columns, defaults = form_values(self.fields)
        return {"columns": columns, "defaults": defaults}

    def _answer_columns(self) -> list[str]:
        verdict = [self.job_kind.verdict_field, "detail"] if self.job_kind.verdict_field else []
        return [*verdict, "outcome", "result_url", "credits", "paid_in", "error_message"]
