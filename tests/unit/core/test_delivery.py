"""Failure budget parsing and how per-node results add up."""

from __future__ import annotations

import pytest

from envctl.core.delivery import Delivered, DeliveryReport, NotDelivered, check_env_name, parse_max_fail
from envctl.core.group import GroupResult
from envctl.errors import InputError, TransportError


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


def report(**nodes: Delivered | NotDelivered) -> DeliveryReport:
    return DeliveryReport("push", "e", "sha256:d", GroupResult(nodes))


def test_outcome_all_partial_none() -> None:
    ok, same = Delivered("ok", "sha256:d", bytes_sent=5), Delivered("unchanged", "sha256:d")
    bad = NotDelivered("c: disk full", "free space", digest="sha256:d", bytes_sent=3, resumed_from=2)
    skipped = NotDelivered("not activated", status="skipped")
    assert report(a=ok, b=same).outcome == "all" and report(a=ok, b=same).exit_code == 0
    partial = report(a=ok, c=bad, d=skipped)
    assert partial.outcome == "partial" and partial.exit_code == 1
    assert report(c=bad).outcome == "none"
    doc = partial.as_json()
    assert (doc["schema"], doc["ok"], doc["outcome"], doc["bytes_sent"]) == (
        "envctl.push/1",
        False,
        "partial",
        8,
    )
    assert doc["nodes"]["a"] == {**ok.as_json(), "ok": True}
    assert doc["nodes"]["c"] == {
        "ok": False,
        "error": "c: disk full",
        "hint": "free space",
        "status": "failed",
        "digest": "sha256:d",
        "previous": None,
        "bytes_sent": 3,
        "blobs_sent": 0,
        "resumed_from": 2,
        "seconds": 0.0,
        "generation": None,
        "repaired": None,
    }
    assert doc["nodes"]["d"]["status"] == "skipped"
    assert (doc["generation"], doc["token"], doc["lost_to"]) == (None, None, None)


def test_any_error_becomes_a_failed_node_entry_keeping_its_cause() -> None:
    cause = TransportError("n1", "connection refused", hint="is sshd running?")
    entry = NotDelivered.of(cause, "sha256:d", bytes_sent=7)
    assert (entry.message, entry.hint, entry.status, entry.bytes_sent) == (
        "n1: connection refused",
        "is sshd running?",
        "failed",
        7,
    )
    assert entry.__cause__ is cause and NotDelivered.of(entry, None) is entry


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
