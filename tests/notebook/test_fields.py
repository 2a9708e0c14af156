"""Form fields generated from the registry's request models."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.api import KINDS, get_kind
from akool_flows.notebook.fields import (
    CONSTANT,
    NOT_SET,
    FieldInput,
    field_specs,
    form_values,
)


def test_moderation_fields_follow_the_model() -> None:
    specs = {s.name: s for s in field_specs(get_kind("moderation"))}
    assert set(specs) == set(get_kind("moderation").field_names)
    assert specs["type"].widget == "choice" and specs["type"].choices == (1, 2, 3, 4)
    assert specs["content"].required and specs["content"].widget == "text"
    assert not specs["language"].required
    assert specs["webhookUrl"].widget == "text"


@pytest.mark.parametrize("kind,field,widget", [
    ("faceswap_image", "sourceImage", "json"), ("talking_avatar", "elements", "json"),
    ("talking_avatar", "width", "choice"), ("video_translation", "lipsync", "bool"),
    ("live_session", "duration", "int"), ("background_change", "overlay_origin_x", "int"),
    ("image_button", "_id", "text"), ("avatar_upload", "type", "choice"),
])
def test_widget_per_type(kind: str, field: str, widget: str) -> None:
    specs = {s.name: s for s in field_specs(get_kind(kind))}
    assert specs[field].widget == widget


def test_required_fields_come_first() -> None:
    for kind in KINDS.values():
        flags = [s.required for s in field_specs(kind)]
        assert flags == sorted(flags, reverse=True), kind.name


def test_source_defaults_columns_named_as_fields() -> None:
    df = pd.DataFrame({"content": ["hi"], "other": [1]})
    specs = {s.name: s for s in field_specs(get_kind("moderation"))}
    assert FieldInput(specs["content"], df).source.value == ("column", "content")
    assert FieldInput(specs["type"], df).source.value == CONSTANT
    assert FieldInput(specs["language"], df).source.value == NOT_SET


def test_form_values_parse_constants_and_name_bad_json() -> None:
    df = pd.DataFrame({"modifyImage": ["https://example.com/a.jpg"]})
    inputs = {s.name: FieldInput(s, df) for s in field_specs(get_kind("reage_image"))}
    inputs["targetImage"].set_constant([{"path": "https://example.com/f.png", "opts": "1,2:3,4"}])
    inputs["face_reage"].set_constant(10)
    columns, defaults = form_values(inputs)
    assert columns == {"modifyImage": "modifyImage"}
    assert defaults == {"targetImage": [{"path": "https://example.com/f.png", "opts": "1,2:3,4"}], "face_reage": 10}
    inputs["targetImage"].value.value = "[{not json"
    with pytest.raises(ValueError, match="targetImage: not valid JSON"):
        form_values(inputs)
