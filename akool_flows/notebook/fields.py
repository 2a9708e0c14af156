"""Form fields generated from a job kind's request model (for `BatchApp`).

Each field of the pydantic model becomes one row of the form: where its value comes from (a
DataFrame column, one constant for every row, or not set) and, for a constant, an input widget
chosen from the field's type: a dropdown for the docs' enumerations, a checkbox for booleans,
number boxes, a text box, or a JSON box for lists and nested objects (face lists, elements).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

import ipywidgets as w
import pandas as pd
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from akool_flows.api.kinds import JobKind

__all__ = ["FieldSpec", "FieldInput", "field_errors", "field_specs", "show_errors", "NOT_SET", "CONSTANT"]

NOT_SET = "__not_set__"
CONSTANT = "__constant__"
Widget = Literal["choice", "bool", "int", "float", "text", "json"]


@dataclass(frozen=True)
class FieldSpec:
    """One request field as the form needs it."""

    name: str
    required: bool
    widget: Widget
    description: str = ""
    choices: tuple[Any, ...] = ()
    default: Any = None


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return annotation


def _widget_for(annotation: Any) -> tuple[Widget, tuple[Any, ...]]:
    ann = _strip_optional(annotation)
    origin = typing.get_origin(ann)
    if origin is Literal:
        return "choice", typing.get_args(ann)
    if ann is bool:
        return "bool", ()
    if ann is int:
        return "int", ()
    if ann is float:
        return "float", ()
    if ann is str:
        return "text", ()
    if origin in (list, tuple, dict) or (isinstance(ann, type) and issubclass(ann, BaseModel)):
        return "json", ()
    return "text", ()


def field_specs(kind: JobKind) -> list[FieldSpec]:
    """The form's fields for `kind`, required first, in the model's order otherwise."""
    specs = []
    for name, info in kind.request_model.model_fields.items():
        widget, choices = _widget_for(info.annotation)
        default = None if info.default is PydanticUndefined else info.default
        specs.append(FieldSpec(name=info.alias or name, required=info.is_required(), widget=widget,
                               description=info.description or "", choices=choices, default=default))
    return sorted(specs, key=lambda s: not s.required)


def _value_widget(spec: FieldSpec) -> w.Widget:
    layout = w.Layout(width="360px")
    if spec.widget == "choice":
        value = spec.default if spec.default in spec.choices else spec.choices[0]
        return w.Dropdown(options=[(str(c), c) for c in spec.choices], value=value, layout=layout)
    if spec.widget == "bool":
        return w.Checkbox(value=bool(spec.default), indent=False)
    if spec.widget == "int":
        return w.IntText(value=int(spec.default or 0), layout=layout, continuous_update=False)
    if spec.widget == "float":
        return w.FloatText(value=float(spec.default or 0.0), layout=layout, continuous_update=False)
    # Text inputs report on Enter / blur, not per keystroke: each change re-validates every row.
    if spec.widget == "json":
        return w.Textarea(value="" if spec.default is None else json.dumps(spec.default), continuous_update=False,
                          placeholder="JSON, e.g. [{...}]", layout=w.Layout(width="360px", height="52px"))
    return w.Text(value="" if spec.default is None else str(spec.default), placeholder=spec.description,
                  layout=layout, continuous_update=False)


class FieldInput:
    """One form row: the field's label, its source (column / constant / not set), its value."""

    def __init__(self, spec: FieldSpec, df: pd.DataFrame) -> None:
        self.spec = spec
        sources: list[tuple[str, Any]] = []
        if not spec.required:
            sources.append(("not set", NOT_SET))
        sources.append(("constant", CONSTANT))
        sources += [(f"column: {c}", ("column", c)) for c in df.columns]
        if spec.name in df.columns:
            initial: Any = ("column", spec.name)
        elif spec.required or spec.default is not None:
            initial = CONSTANT
        else:
            initial = NOT_SET
        label = f"{spec.name}{' *' if spec.required else ''}"
        self.label = w.HTML(f'<span title="{_attr(spec.description)}"><code>{_attr(label)}</code></span>',
                            layout=w.Layout(width="170px"))
        self.source = w.Dropdown(options=sources, value=initial, layout=w.Layout(width="220px"))
        self.source.add_class("akool-field-source")
        self.source.add_class(f"akool-field-{spec.name.strip('_')}")
        self.value = _value_widget(spec)
        self.value.add_class("akool-field-value")
        self.error = error_label()
        self.row = w.HBox([self.label, self.source, self.value, self.error],
                          layout=w.Layout(flex_flow="row wrap", align_items="center", max_width="100%"))
        self.source.observe(lambda _c: self._sync(), names="value")
        self._sync()

    def _sync(self) -> None:
        self.value.layout.visibility = "visible" if self.source.value == CONSTANT else "hidden"

    def set_constant(self, value: Any) -> None:
        """Use `value` for every row (JSON fields accept Python lists/dicts)."""
        if self.spec.widget == "json" and not isinstance(value, str):
            value = json.dumps(value)
        self.value.value = value
        self.source.value = CONSTANT

    def set_column(self, column: Any) -> None:
        self.source.value = ("column", column)

    def constant(self) -> Any:
        """The constant's value for the request (JSON parsed; blank text means not set)."""
        value = self.value.value
        if self.spec.widget == "json":
            text = (value or "").strip()
            if not text:
                return None
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{self.spec.name}: not valid JSON ({exc})") from None
        if self.spec.widget == "text":
            return value.strip() or None
        return value


def _attr(text: str) -> str:
    import html
    return html.escape(text, quote=True)


def form_values(inputs: Mapping[str, FieldInput]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(columns, defaults)`` for `plan_batch` from the form rows."""
    columns: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, item in inputs.items():
        source = item.source.value
        if isinstance(source, tuple):
            columns[name] = source[1]
        elif source == CONSTANT:
            value = item.constant()
            if value is not None:
                defaults[name] = value
    return columns, defaults


def field_errors(kind: JobKind, values: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with the form's constant `values`, by field (the docs' field name).

    A missing field is not an error here: a column may provide it row by row."""
    from akool_flows.api.errors import ValidationError

    try:
        kind.validate(values)
    except ValidationError as exc:
        out: dict[str, str] = {}
        for problem in str(exc).removeprefix(f"{kind.name}: ").split("; "):
            name, _, message = problem.partition(": ")
            name = name.split(".")[0]
            if name in values and message != "required field is missing":
                out.setdefault(name, message)
        return out
    return {}


def error_label() -> w.HTML:
    """The place next to a field where its error shows."""
    label = w.HTML(layout=w.Layout(max_width="100%"))
    label.add_class("akool-field-error")
    return label


def show_errors(labels: Mapping[str, w.HTML], errors: Mapping[str, str]) -> None:
    for name, label in labels.items():
        message = errors.get(name)
        label.value = f'<span class="akool-problem">⚠ {_attr(message)}</span>' if message else ""
