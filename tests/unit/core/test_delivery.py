"""Failure budget parsing and how per-node results add up."""

from __future__ import annotations

import pytest

from envctl.core.delivery import DeliveryReport, NodeResult, check_env_name, parse_max_fail
from envctl.errors import InputError


@pytest.mark.parametrize(
    ("text", "total", "want"),
    [
        (None, 10, None),
        ("0", 10, 0),
        ("3", 10, 3),
        ("25%", 8, 2),
        ("10%", 5, 0),
        ("100%", 4, 4),
    ],
)
def test_max_fail(text: str | None, total: int, want: int | None) -> None:
    assert parse_max_fail(text, total) == want


@pytest.mark.parametrize("bad", ["x", "-1", "150%", "1.5"])
def test_bad_max_fail(bad: str) -> None:
    with pytest.raises(InputError, match="--max-fail"):
        parse_max_fail(bad, 10)


def test_outcome_all_partial_none() -> None:
    ok, same, bad = NodeResult("a", "ok"), NodeResult("b", "unchanged"), NodeResult("c", "failed")
    assert DeliveryReport("push", "e", None, {"a": ok, "b": same}).outcome == "ok"
    partial = DeliveryReport("push", "e", None, {"a": ok, "c": bad})
    assert partial.outcome == "partial" and partial.exit_code == 1
    assert DeliveryReport("push", "e", None, {"c": bad}).outcome == "failed"
    doc = partial.as_json()
    assert doc["schema"] == "envctl.push/1" and set(doc["nodes"]["a"]) >= {"status", "reason", "bytes_sent"}


@pytest.mark.parametrize("name", ["Demo", "a/b", "../x", "", "-x", "a b"])
def test_env_names_that_would_be_unsafe_paths_or_tags(name: str) -> None:
    with pytest.raises(InputError):
        check_env_name(name)


@pytest.mark.parametrize(
    ("ref", "directory", "want"),
    [("registry.io/team/Torch-Train:v3", "x", "torch-train"), ("demo", "x", "demo"), (None, "Img", "img")],
)
def test_default_env_name(ref: str | None, directory: str, want: str) -> None:
    from envctl.core.delivery import default_env_name

    assert default_env_name(ref, directory) == want
