"""`akool-flows kinds [KIND]`: the job-kind registry as a table, or one kind in detail.

    akool-flows kinds                 # every kind: endpoints, batch polling, cancel, webhook, required fields
    akool-flows kinds moderation      # its fields with types, constraints and descriptions, and an example
    akool-flows kinds --json          # the same as data (also with KIND)

Everything shown is derived from `akool_flows.api.kinds.KINDS`, the registry every other part uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from typing import Any

API_PREFIX = "/api/open"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `kinds` to the `akool-flows` parser."""
    p = sub.add_parser(
        "kinds",
        help="list the Akool job kinds (or show one kind's fields)",
        description="List every Akool job kind the registry knows, or show one kind's request fields, "
                    "constraints and an example.",
    )
    p.add_argument("kind", nargs="?", help="a kind name, e.g. moderation (omit to list all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from akool_flows.api.errors import UnknownKindError

    try:
        if args.kind:
            out = json.dumps(kind_info(args.kind), indent=2) if args.json else kind_detail(args.kind)
        else:
            out = json.dumps(kinds_info(), indent=2) if args.json else kinds_table()
    except UnknownKindError as exc:
        print(f"akool-flows kinds: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


# --- data ----------------------------------------------------------------------------------------

def kinds_info() -> list[dict[str, Any]]:
    """One summary dict per kind, in registry order."""
    from akool_flows.api.kinds import KINDS

    return [_summary(k) for k in KINDS.values()]


def _summary(k: Any) -> dict[str, Any]:
    return {
        "name": k.name, "title": k.title, "create": f"POST {k.create_path}",
        "status": " ".join(_status_text(k).split()), "batch_poll": k.batch_poll,
        "cancel": f"POST {k.cancel_path}" if k.cancel_path else None,
        "webhook": k.webhook_type if k.accepts_webhook else None, "required": k.required_fields,
        "result": k.result_media,
    }


def kind_info(name: str) -> dict[str, Any]:
    """Everything about one kind: summary, fields (with constraints) and the example."""
    from akool_flows.api.kinds import get_kind

    k = get_kind(name)
    return {**_summary(k), "description": k.description, "fields": _fields(k.request_model),
            "example": dict(k.example)}


def _fields(model: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Fields of a request model, nested models flattened as `parent[].child`."""
    from akool_flows.api.kinds import nested_model

    out = []
    # The docs list webhookUrl last; the models inherit it first.
    items = sorted(model.model_fields.items(), key=lambda item: item[0] == "webhookUrl")
    for attr, info in items:
        name = prefix + (info.alias or attr)
        description = _description(info)
        constraints = _constraints(info)
        if description and len(constraints) > 40:
            # A long regex explains less than the description next to it.
            constraints = ", ".join(c for c in constraints.split(", ") if not c.startswith("pattern "))
        out.append({"name": name, "required": info.is_required(), "type": _type_text(info.annotation),
                    "constraints": constraints, "description": description})
        nested = nested_model(info.annotation)
        if nested is not None:
            many = typing.get_origin(_strip_optional(info.annotation)) is list
            out.extend(_fields(nested, f"{name}[]." if many else f"{name}."))
    return out


# --- reading pydantic field info -------------------------------------------------------------

def _strip_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        return args[0] if len(args) == 1 else annotation
    return annotation


def _unannotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _type_text(annotation: Any) -> str:
    from akool_flows.api.kinds import nested_model

    base = _unannotated(_strip_optional(annotation))
    origin = typing.get_origin(base)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in typing.get_args(base))
    if origin is list:
        inner = typing.get_args(base)
        return f"list of {_type_text(inner[0])}" if inner else "list"
    nested = nested_model(base)
    if nested is not None:
        return "object"
    if isinstance(base, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(base.__name__,
                                                                                              base.__name__)
    return str(base).replace("typing.", "")


def _metadata(info: Any) -> list[Any]:
    """Constraint objects on the field itself and inside Annotated/Optional wrappers."""
    found = list(info.metadata)

    def walk(annotation: Any) -> None:
        if typing.get_origin(annotation) is typing.Annotated:
            found.extend(typing.get_args(annotation)[1:])
            walk(typing.get_args(annotation)[0])
        for arg in typing.get_args(annotation):
            if typing.get_origin(annotation) is not typing.Annotated:
                walk(arg)

    walk(info.annotation)
    return found


def _constraints(info: Any) -> str:
    from pydantic.fields import FieldInfo

    from akool_flows.api import models

    parts: list[str] = []
    validators = {getattr(models, "_http_url", None): "http(s) URL", getattr(models, "_size", None): "WIDTHxHEIGHT"}
    for meta in _metadata(info):
        if isinstance(meta, FieldInfo):
            parts.extend(_constraints_of(meta.metadata))
            continue
        func = getattr(meta, "func", None)
        if func in validators:
            parts.append(validators[func])
        elif func is not None and getattr(func, "__qualname__", "").startswith("_max_words"):
            limit = (func.__closure__ or [None])[0]
            parts.append(f"at most {limit.cell_contents} words" if limit else "word limit")
        else:
            parts.extend(_constraints_of([meta]))
    return ", ".join(dict.fromkeys(parts))


def _constraints_of(metadata: list[Any]) -> list[str]:
    # annotated_types objects (Ge, MaxLen...) carry one attribute each; pydantic's general
    # metadata (pattern...) may carry several.
    labels = {"ge": ">= {}", "gt": "> {}", "le": "<= {}", "lt": "< {}", "min_length": "min length {}",
              "max_length": "max length {}", "pattern": "pattern {}"}
    out = []
    for meta in metadata:
        for attr, label in labels.items():
            value = getattr(meta, attr, None)
            if value is not None and not callable(value):
                out.append(label.format(value))
    return out


def _description(info: Any) -> str:
    from pydantic.fields import FieldInfo

    if info.description:
        return info.description
    for meta in _metadata(info):
        if isinstance(meta, FieldInfo) and meta.description:
            return meta.description
    return ""


# --- text ----------------------------------------------------------------------------------

def _short(path: str | None) -> str:
    if not path:
        return "-"
    return path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def kinds_table() -> str:
    """The registry as a text table (paths relative to /api/open)."""
    from akool_flows.api.kinds import KINDS

    rows = [[k.name, _short(k.create_path), _status_text(k, short=True),
             "yes" if k.batch_poll else "no", _short(k.cancel_path),
             k.webhook_type if k.accepts_webhook and k.webhook_type else ("yes" if k.accepts_webhook else "-"),
             ", ".join(k.required_fields)] for k in KINDS.values()]
    table = _table(["KIND", "CREATE (POST)", "STATUS", "BATCH-POLL", "CANCEL (POST)", "WEBHOOK", "REQUIRED"],
                   rows)
    return (f"{table}\n\n{len(rows)} kinds; paths are under {API_PREFIX}. "
            "`akool-flows kinds KIND` shows a kind's fields and an example.")


def kind_detail(name: str) -> str:
    """One kind: endpoints, each field's type/constraints/description, and a valid example."""
    from akool_flows.api.kinds import get_kind

    k = get_kind(name)
    info = kind_info(name)
    cost = "published by the docs (estimated before it runs)" if k.price is not None else \
        f"reported after the job in {', '.join(k.credit_fields)}" if k.credit_fields else "not reported"
    lines = [
        f"{k.name} - {k.title}",
        k.description,
        "",
        f"  create    POST {k.create_path}",
        f"  status    {_status_text(k)}" + ("  (many ids, comma-separated: batch polling)" if k.batch_poll else ""),
        f"  cancel    {_cancel_text(k)}",
        f"  webhook   {('yes, type ' + repr(k.webhook_type)) if k.accepts_webhook and k.webhook_type else ('yes' if k.accepts_webhook else 'no')}",
        f"  result    {k.result_media}" + (f" ({', '.join(k.result_fields)})" if k.result_fields else ""),
        f"  credits   {cost}",
        "",
        "Fields (* = required):",
    ]
    rows = [[("* " if f["required"] else "  ") + f["name"], f["type"], f["constraints"] or "",
             f["description"] or ""] for f in info["fields"]]
    lines.append(_indent(_table(["  FIELD", "TYPE", "CONSTRAINTS", "DESCRIPTION"], rows)))
    lines += ["", "Example:", _indent(json.dumps(info["example"], indent=2, ensure_ascii=False))]
    return "\n".join(lines)


def _status_text(k: Any, *, short: bool = False) -> str:
    """How the status endpoint takes the id: in the query (GET) or a JSON body (POST)."""
    path = _short(k.status_path) if short else k.status_path
    if k.status_method == "POST":
        return f'POST {path} {{"{k.status_id_param}"}}' if short else f'POST {path}  {{"{k.status_id_param}": "<_id>"}}'
    return f"{path}?{k.status_id_param}=" if short else f"GET  {path}?{k.status_id_param}=<_id>"


def _cancel_text(k: Any) -> str:
    if not k.cancel_path:
        return "-"
    return f'POST {k.cancel_path}  {{"{k.cancel_body_field}": "<create answer\'s {k.cancel_id_field}>"}}'


def _indent(text: str, pad: str = "  ") -> str:
    return "\n".join(pad + line if line else line for line in text.splitlines())
