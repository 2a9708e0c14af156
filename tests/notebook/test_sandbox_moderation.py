"""The sandbox's moderation verdicts read right in a demo: checked against a labelled list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from akool_flows.sandbox.moderation import classify

LABELS = Path(__file__).with_name("moderation_labels.csv")


def test_verdicts_agree_with_the_labelled_comments() -> None:
    df = pd.read_csv(LABELS, keep_default_na=False)
    assert len(df) >= 100 and set(df["label"]) == {"Compliant", "Non-Compliant", "Unknown"}
    got = [classify(4, text).final_conclusion for text in df["comment"]]
    wrong = [(label, g, text) for label, g, text in zip(df["label"], got, df["comment"]) if label != g]
    assert 1 - len(wrong) / len(df) >= 0.95, wrong


def test_the_two_demo_sentences() -> None:
    threat = classify(4, "I will come to your office with a knife")
    assert threat.final_conclusion == "Non-Compliant"
    assert threat.result.startswith("- violence: A threat of physical harm") and '"i will come to your office with a knife"' in threat.result
    assert classify(4, "Shut up and take my money").final_conclusion == "Compliant"


def test_reasons_are_readable_and_name_each_category() -> None:
    v = classify(4, "You are a complete idiot, what the fuck is this")
    lines = v.result.splitlines()
    assert lines[-1] == "Result: Non-Compliant"
    assert [line.split(":")[0] for line in lines[:-1]] == ["- cyberbullying", "- profanity"]
    custom = classify(4, "Our competitor Acme is cheaper", user_input="flag any mention of Acme")
    assert custom.final_conclusion == "Non-Compliant" and "customized" in custom.result and '"acme"' in custom.result
