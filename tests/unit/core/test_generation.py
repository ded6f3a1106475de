"""Ballots, rollback targets and what each node should run, from the nodes' records alone."""

from __future__ import annotations

import pytest

from envctl.core.generation import (
    NO_BALLOT,
    Ballot,
    Claim,
    NodeEpoch,
    Switched,
    desired,
    newer_ballots,
    next_ballot,
    rollback_target,
)

A, B, C = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
G1, G2, G3 = Ballot(1, "1-x"), Ballot(2, "2-x"), Ballot(3, "3-x")


def test_ballots_order_by_generation_then_token() -> None:
    assert NO_BALLOT < Ballot(1, "0") < Ballot(1, "1") < Ballot(2, "0")


def test_next_ballot_outranks_every_promise_and_switch_seen() -> None:
    seen = [
        NodeEpoch(promise=Claim(Ballot(7, "t"), "push", A, "u")),
        NodeEpoch(current=Switched(A, Ballot(9, "t"))),
        NodeEpoch(),
    ]
    assert next_ballot(seen, "new") == Ballot(10, "new")
    assert next_ballot([], "new") == Ballot(1, "new")


def test_rollback_target_is_the_previous_of_the_newest_switch() -> None:
    behind = NodeEpoch(current=Switched(A, G1), previous=Switched(C, NO_BALLOT))  # missed G2
    ahead = NodeEpoch(current=Switched(B, G2), previous=Switched(A, G1))
    assert rollback_target({"n1": ahead, "n2": ahead, "n3": behind, "n4": NodeEpoch()}) == A


@pytest.mark.parametrize(
    ("epochs", "why"),
    [
        ({"n1": NodeEpoch()}, "no node has"),
        ({"n1": NodeEpoch(current=Switched(A, G1))}, "n1 has no previous"),
        (
            {
                "n1": NodeEpoch(current=Switched(B, G2), previous=Switched(A, G1)),
                "n2": NodeEpoch(current=Switched(B, G2), previous=Switched(C, G1)),
            },
            "disagree",
        ),
    ],
)
def test_rollback_target_refuses(epochs: dict[str, NodeEpoch], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        rollback_target(epochs)


def test_desired_follows_the_newest_switch_that_included_the_node() -> None:
    records = {"n1": Switched(B, G2), "n2": Switched(A, G1), "n3": Switched(A, G1), "n4": None}
    assert newer_ballots(records) == {G1: "n2", G2: "n1"}
    members = {G2: frozenset({"n1", "n2", "n4"}), G1: frozenset({"n1", "n2", "n3"})}
    want = desired(records, members)
    assert {n: (w.digest, w.ballot) if w else None for n, w in want.items()} == {
        "n1": (B, G2),
        "n2": (B, G2),  # was part of G2 and missed it
        "n3": (A, G1),  # never part of G2: as its own switch left it
        "n4": (B, G2),  # part of G2, has nothing
    }


def test_unknown_members_and_old_records_blame_nobody() -> None:
    records = {"n1": Switched(B, G3), "n2": Switched(A, NO_BALLOT), "n3": None}
    want = desired(records, {G3: None})
    assert want["n2"] == desired({"n2": records["n2"]}, {})["n2"] and want["n3"] is None
    assert newer_ballots({"n1": Switched(A, G1), "n2": Switched(A, G1)}) == {}
