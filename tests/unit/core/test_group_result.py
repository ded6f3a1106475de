"""GroupResult: every node's value or error, what they add up to, and its one JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envctl.core.group import GroupResult, node_json
from envctl.errors import RemoteError, TransportError


@dataclass(frozen=True)
class Answer:
    value: int

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value}


def test_outcome_all_partial_none_and_exit_codes() -> None:
    err = TransportError("b", "down")
    every = GroupResult({"a": Answer(1), "b": Answer(2)})
    assert (every.outcome, every.ok, every.exit_code) == ("all", True, 0)
    mixed = GroupResult({"a": Answer(1), "b": err})
    assert (mixed.outcome, mixed.ok, mixed.exit_code) == ("partial", False, 1)
    assert (mixed.succeeded, mixed.failed) == ({"a": Answer(1)}, {"b": err})
    none = GroupResult({"b": err})
    assert (none.outcome, none.exit_code) == ("none", 1)
    assert GroupResult({}).outcome == "all"  # nothing selected: nothing failed
    assert list(mixed) == ["a", "b"] and len(mixed) == 2


def test_json_has_schema_ok_outcome_and_one_entry_per_node() -> None:
    err = RemoteError("b", "exited with 3", hint="look at the node")
    err.details = {"exit_code": 3}  # type: ignore[attr-defined]
    doc = GroupResult({"a": Answer(1), "b": err}).as_json("probe", 2, extra="x")
    assert doc == {
        "schema": "envctl.probe/2",
        "ok": False,
        "outcome": "partial",
        "extra": "x",
        "nodes": {
            "a": {"ok": True, "value": 1},
            "b": {"ok": False, "error": "b: exited with 3", "hint": "look at the node", "exit_code": 3},
        },
    }


def test_a_command_may_decide_ok_itself_and_details_cannot_hide_the_error() -> None:
    doc = GroupResult({"a": Answer(1)}).as_json("status", ok=False, drift=True)
    assert (doc["ok"], doc["outcome"], doc["drift"]) == (False, "all", True)
    err = TransportError("n", "down")
    err.details = {"ok": True, "error": "fine"}  # type: ignore[attr-defined]
    assert node_json(err) == {"ok": False, "error": "n: down", "hint": None}
