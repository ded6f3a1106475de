"""The relay tree: one parent each, bounded depth, racks kept together, the sender feeding few."""

from __future__ import annotations

import math

import pytest

from envctl.core.relay_plan import plan_relay, rack_of, sources
from envctl.errors import InputError


def _nodes(racks: int, per_rack: int) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"r{r}n{i}", ("all", f"rack{r}")) for r in range(racks) for i in range(per_rack)]


@pytest.mark.parametrize(
    ("racks", "per_rack", "fanout"), [(1, 1, 2), (2, 4, 2), (2, 8, 2), (5, 7, 3), (3, 3, 1)]
)
def test_every_node_has_one_parent_and_the_tree_reaches_the_sender(
    racks: int, per_rack: int, fanout: int
) -> None:
    plan = plan_relay(_nodes(racks, per_rack), fanout=fanout)
    assert set(plan.parents) == {n for n, _ in _nodes(racks, per_rack)}
    for node in plan.parents:
        chain = plan.ancestors(node)
        assert node not in chain and len(chain) < len(plan.parents)  # no cycle
    for node in [*plan.parents, None]:
        assert len(plan.children(node)) <= max(fanout, racks)


def test_racks_are_kept_together_and_cross_rack_streams_are_one_per_rack() -> None:
    plan = plan_relay(_nodes(2, 8), fanout=2)
    cross = [n for n, p in plan.parents.items() if p is not None and plan.racks[p] != plan.racks[n]]
    assert cross == ["r1n0"]  # the second rack's head, fed by the first rack's head
    assert plan.children(None) == ["r0n0"]  # the sender feeds one node: its link carries one copy
    assert plan.racks["r0n3"] == "rack0"  # the group of every node ("all") is not a rack


def test_depth_is_logarithmic_inside_a_rack() -> None:
    plan = plan_relay(_nodes(1, 64), fanout=2)
    deepest = max(plan.depth(n) for n in plan.parents)
    assert deepest <= math.ceil(math.log2(64 + 1)) + 1


def test_a_chain_gives_every_rack_its_own_seed() -> None:
    plan = plan_relay(_nodes(3, 3), fanout=1)
    assert plan.children(None) == ["r0n0", "r1n0", "r2n0"]
    assert plan.parents["r0n2"] == "r0n1" and plan.parents["r0n1"] == "r0n0"


def test_more_seeds_spread_the_heads_over_the_sender() -> None:
    plan = plan_relay(_nodes(3, 2), fanout=2, seeds=2)
    assert plan.children(None) == ["r0n0", "r1n0"]


def test_sources_are_the_ancestors_nearest_first() -> None:
    plan = plan_relay(_nodes(1, 7), fanout=2)
    assert sources(plan, "r0n6") == ["r0n2", "r0n0"]
    assert sources(plan, "r0n0") == []
    assert plan.relays() == ["r0n0", "r0n1", "r0n2"]


def test_rack_of_prefers_the_smallest_shared_group() -> None:
    sizes = {"all": 10, "rack1": 5, "solo": 1}
    assert rack_of(("all", "rack1", "solo"), sizes) == "rack1"
    assert rack_of(("solo",), sizes) == "solo"
    assert rack_of((), sizes) == ""


@pytest.mark.parametrize(
    ("fanout", "seeds", "words"), [(0, 1, "fan-out"), (17, 1, "fan-out"), (2, 0, "seeds")]
)
def test_bad_shapes_are_input_errors(fanout: int, seeds: int, words: str) -> None:
    with pytest.raises(InputError, match=words):
        plan_relay(_nodes(1, 2), fanout=fanout, seeds=seeds)


def test_a_node_named_twice_is_refused() -> None:
    with pytest.raises(InputError, match="twice"):
        plan_relay([("a", ()), ("a", ())])


def test_holders_are_the_roots_and_the_sender_feeds_no_one() -> None:
    nodes = [(f"n{i}", ("all",)) for i in range(1, 7)]
    plan = plan_relay(nodes, fanout=2, holders={"n1", "n2"})
    assert plan.holders == {"n1", "n2"} and plan.seeds() == []
    assert plan.children(None) == ["n1", "n2"]  # roots, but they hold everything already
    for node in ("n3", "n4", "n5", "n6"):
        assert plan.ancestors(node)[-1] in {"n1", "n2"}  # every chain ends at a holder
    assert sorted(plan.children("n1") + plan.children("n2")) == ["n3", "n4", "n5", "n6"]


def test_a_rack_with_a_holder_fills_itself_and_feeds_the_other_racks() -> None:
    plan = plan_relay(_nodes(3, 4), fanout=2, holders={"r1n2"})
    assert plan.seeds() == []
    for n in ("r1n0", "r1n1", "r1n3"):  # its rack, from inside the rack
        assert all(plan.racks[a] == "rack1" for a in plan.ancestors(n))
    cross = sorted(n for n, p in plan.parents.items() if p is not None and plan.racks[p] != plan.racks[n])
    assert cross == ["r0n0", "r2n0"]  # one stream into each other rack, none from the sender
    assert plan.parents["r0n0"] == "r1n2"


def test_holders_of_a_whole_rack_give_all_their_slots_to_other_racks() -> None:
    nodes = [("h1", ("a",)), ("h2", ("a",)), ("x1", ("b",)), ("x2", ("b",)), ("y1", ("c",)), ("y2", ("c",))]
    plan = plan_relay(nodes, fanout=1, holders={"h1", "h2"})
    assert plan.parents["x1"] == "h1" and plan.parents["y1"] == "h2" and plan.seeds() == []


def test_a_chain_with_no_spare_slot_falls_back_to_the_sender_for_a_rack() -> None:
    plan = plan_relay(_nodes(2, 3), fanout=1, holders={"r0n0"})
    assert plan.parents["r0n1"] == "r0n0"  # the holder's one slot stays in its rack
    assert plan.seeds() == ["r1n0"]  # so the sender takes the other rack, as without holders


def test_every_node_holding_means_no_tree_at_all() -> None:
    plan = plan_relay(_nodes(1, 3), holders={"r0n0", "r0n1", "r0n2"})
    assert plan.relays() == [] and plan.seeds() == []


def test_holders_and_seeds_are_checked() -> None:
    with pytest.raises(InputError, match="holder ghost"):
        plan_relay(_nodes(1, 2), holders={"ghost"})
    with pytest.raises(InputError, match="seeds 65"):
        plan_relay(_nodes(1, 2), seeds=65)
