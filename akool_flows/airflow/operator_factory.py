"""Build one operator class per registry kind, as plain Python objects (no generated source).

Each class is what a hand-written one would be: keyword-only arguments named as the request
model's fields (required ones without a default), a real ``__init__`` signature (Airflow's
``BaseOperatorMeta`` reads it to apply ``default_args``, report missing arguments and check
mapped arguments; ``help()`` and IDEs read it too), ``template_fields``, a docstring listing
the fields, and ``__module__``/``__qualname__`` naming the module that exports it, so pickle
and Airflow's serialization find the class again by name.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from akool_flows.airflow.faces import derivable_face_list, face_media
from akool_flows.api.kinds import JobKind, get_kind

__all__ = ["make_job_operator", "operator_class_name"]

_P = inspect.Parameter


def operator_class_name(kind: str | JobKind) -> str:
    """``talking_photo`` -> ``AkoolTalkingPhotoOperator``: the public name DAGs import."""
    return "Akool" + "".join(part.capitalize() for part in get_kind(kind).name.split("_")) + "Operator"


def _type_text(tp: Any) -> str:
    """A short reader's description of a request field's type, for generated docstrings."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _type_text(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, Sequence):
        return f"list of {_type_text(args[0])}" if args else "list"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "{" + ", ".join(f.alias or n for n, f in tp.model_fields.items()) + "}"
    return tp.__name__ if isinstance(tp, type) else str(tp)


def _py_name(kind: JobKind, docs_name: str) -> str:
    for name, f in kind.request_model.model_fields.items():
        if docs_name in (name, f.alias):
            return name
    return docs_name


def _docstring(kind: JobKind, class_name: str, optional: set[str]) -> str:
    fields = kind.request_model.model_fields
    lines = [f"{kind.title}: {kind.description}", "",
             f"Creates one ``{kind.name}`` job (``POST {kind.create_path}``) and returns its result to XCom.",
             "Every request field below is templated; validation happens before anything is sent.", ""]
    for name, f in fields.items():
        required = f.is_required() and name not in optional
        described = kind.field_description(name)
        alias = f" (the docs' ``{f.alias}``)" if f.alias and f.alias != name else ""
        lines.append(f":param {name}: {'required' if required else 'optional'}{alias}; "
                     f"{_type_text(f.annotation)}.{f' {described}' if described else ''}")
    if kind.face_fields:
        derived = derivable_face_list(kind)
        lines += ["", "Faces may be plain image URLs or ``{\"path\": url}`` without ``opts``: the landmarks are "
                  "filled through face detect"
                  + (f" and a missing ``{derived}`` is taken from ``{face_media(kind)}``." if derived else ".")]
    if not kind.waits_by_default:
        lines += ["", "Does not wait for the job by default: the task returns its id at once "
                  "(``wait_for_completion=True`` waits)."]
    lines += ["", "Common arguments (``akool_conn_id``, ``wait_for_completion``, ``deferrable``, ``poll_interval``,",
              "``timeout``, ``detect_faces``, ``use_webhook``, ``resubmit_uncertain``) are those of",
              "`AkoolJobOperator`.", "", "Example::", ""]
    example = ", ".join(f"{_py_name(kind, k)}={v!r}" for k, v in kind.example.items())
    lines.append(f"    {class_name}(task_id={kind.name!r}, {example})")
    if kind.cancellable:
        lines += ["", "Killing the task cancels the job on Akool."]
    return "\n".join(lines)


def make_job_operator(kind_name: str | JobKind, *, base: type, module: str, class_name: str | None = None) -> type:
    """The operator class for one registry kind, a subclass of `base` (`AkoolJobOperator`).

    Its request fields become keyword-only, templated arguments; every other keyword goes to
    `base` (``task_id``, ``deferrable``, ``retries``...). `module` must export the class
    under `class_name` for pickling to work.
    """
    kind = get_kind(kind_name)
    class_name = class_name or operator_class_name(kind)
    fields = kind.request_model.model_fields
    names = tuple(fields)
    # A field may not shadow an argument or attribute of the operator classes it inherits.
    reserved = set(dir(base)).union(*(inspect.signature(c.__init__).parameters for c in base.__mro__
                                      if "__init__" in vars(c) and c is not object))
    for name in names:
        if not name.isidentifier() or name in reserved:
            raise TypeError(f"{kind.name}: field {name!r} cannot be an operator argument")
    # A face list that face detect can read from the media may be left out.
    optional = {derivable_face_list(kind)} - {None}
    required = [n for n in names if fields[n].is_required() and n not in optional]
    # No annotations: a templated argument may be a Jinja string or an XComArg until rendered,
    # and faces may be plain URLs; the docstring says what each field finally holds.
    signature = inspect.Signature([
        _P("self", _P.POSITIONAL_OR_KEYWORD),
        *(_P(n, _P.KEYWORD_ONLY) for n in required),
        *(_P(n, _P.KEYWORD_ONLY, default=None) for n in names if n not in required),
        _P("kwargs", _P.VAR_KEYWORD),
    ])

    def __init__(self: Any, **kwargs: Any) -> None:
        # bind() raises the TypeError a hand-written signature would (missing or repeated field).
        bound = signature.bind(self, **kwargs)
        bound.apply_defaults()
        super(cls, self).__init__(**bound.arguments["kwargs"])
        for name in names:
            setattr(self, name, bound.arguments[name])

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{class_name}.__init__"
    __init__.__module__ = module
    renderers = {n: "json" for n in names if _type_text(fields[n].annotation).startswith(("list", "{"))}
    cls = type(class_name, (base,), {
        "__init__": __init__,
        "__module__": module,
        "__qualname__": class_name,
        "__doc__": _docstring(kind, class_name, optional),
        "job_kind": kind.name,
        "field_args": names,
        "template_fields": names,
        "template_fields_renderers": renderers,
    })
    return cls
