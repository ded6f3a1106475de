"""The fan-out model's invariants: the physics a delivery scheme cannot beat or must show."""

from __future__ import annotations

import math

import pytest

from envctl.core import fanout_sim as sim
from envctl.errors import InputError

MB = 1e6
RATE = 25 * MB  # 200 Mbit/s in bytes per second


def scenario(count: int, **kw: object) -> sim.Scenario:
    base: dict[str, object] = {
        "nodes": count,
        "size": 150 * MB,
        "sender_up": RATE,
        "node_down": 125 * MB,
        "node_up": 125 * MB,
        "chunk": 4 * MB,
    }
    return sim.Scenario(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("nodes", [1, 16, 100])
def test_direct_takes_n_copies_on_the_sender_link(nodes: int) -> None:
    out = sim.direct(scenario(nodes))
    assert out.makespan == pytest.approx(nodes * 150 * MB / RATE)
    assert out.sender_bytes == pytest.approx(nodes * 150 * MB)
    assert out.busiest == "sender"


def test_direct_in_waves_when_parallel_is_bounded() -> None:
    # 8 nodes, 2 at a time: four waves, each two copies long; the first finish after one wave
    out = sim.direct(scenario(8, parallel=2))
    wave = 2 * 150 * MB / RATE
    assert out.finish[0] == pytest.approx(wave)
    assert out.makespan == pytest.approx(4 * wave)


def test_direct_node_downlink_caps_a_single_flow() -> None:
    out = sim.direct(scenario(1, sender_up=1000 * MB, node_down=10 * MB))
    assert out.makespan == pytest.approx(15.0)


@pytest.mark.parametrize("depth", [1, 5, 16])
def test_a_chain_costs_one_copy_plus_a_chunk_per_hop(depth: int) -> None:
    out = sim.relay(scenario(depth), fanout=1)
    assert out.extra["depth"] == depth
    expected = 150 * MB / RATE + (depth - 1) * 4 * MB / RATE
    assert out.makespan == pytest.approx(expected)
    assert out.sender_bytes == pytest.approx(150 * MB)


@pytest.mark.parametrize("fanout", [1, 2, 4])
def test_relay_puts_one_copy_on_the_sender_link(fanout: int) -> None:
    out = sim.relay(scenario(64), fanout=fanout)
    assert out.sender_bytes == pytest.approx(150 * MB)
    assert len(out.finish) == 64
    # a relay's uplink carries one copy per child
    assert out.busiest_bytes == pytest.approx(max(1, fanout) * 150 * MB)


def test_a_wide_tree_is_limited_by_the_shared_uplink() -> None:
    # 8 children share a 125 MB/s uplink: 15.6 MB/s each, slower than the 25 MB/s sender
    out = sim.relay(scenario(73, node_up=125 * MB), fanout=8)
    assert out.makespan > 150 * MB / (125 * MB / 8)


def test_killed_relays_children_still_complete() -> None:
    # chain 0 -> 1 -> 2 -> ... ; node 1 dies half-way: 2.. are re-parented to 0 and resume
    sc = scenario(6, deaths=((1, 3.0),), detect=0.5)
    out = sim.relay(sc, fanout=1)
    assert out.lost == 1
    assert len(out.finish) == 5
    alive = sim.relay(scenario(6), fanout=1)
    assert out.makespan > alive.makespan - 1e-9  # a death never makes it faster
    assert out.makespan < alive.makespan + 0.5 + 1.0  # the detection delay and a little re-send
    # resumed, not restarted: node 0's uplink carries far less than two copies
    assert out.busiest_bytes < 1.5 * 150 * MB


def test_every_relay_dying_still_completes_the_rest_from_the_sender() -> None:
    deaths = tuple((n, 1.0) for n in range(0, 15))
    out = sim.relay(scenario(16, deaths=deaths), fanout=1)
    assert out.lost == 15
    assert len(out.finish) == 1
    assert out.sender_bytes < 2 * 150 * MB  # the survivor resumed from what it held


def test_deaths_in_direct_free_the_senders_link() -> None:
    sc = scenario(4, deaths=((0, 0.0), (1, 0.0)))
    out = sim.direct(sc)
    assert out.lost == 2
    assert out.makespan == pytest.approx(2 * 150 * MB / RATE)


def test_a_slow_disk_caps_its_node_only() -> None:
    sc = scenario(4, sender_up=1000 * MB, disk=100 * MB, slow=frozenset({3}), slow_factor=0.1)
    out = sim.direct(sc)
    assert out.finish[-1] == pytest.approx(15.0)  # 150 MB at 10 MB/s
    assert out.finish[0] < 3.0  # the others share what the slow one cannot take


def test_registry_is_one_upload_then_a_star() -> None:
    sc = scenario(16, registry_up=125 * MB)
    out = sim.registry(sc)
    upload = 150 * MB / RATE
    assert out.sender_bytes == pytest.approx(150 * MB)
    assert out.makespan == pytest.approx(upload + 16 * 150 * MB / (125 * MB))
    assert out.busiest == "registry"


def test_registry_with_pieces_pulls_while_the_upload_goes_on() -> None:
    """Pulls of each piece start once it is up: with a registry fast enough for 16 pulls the
    push ends one piece's pull after the upload, not a whole star after it."""
    fast = 16 * 125 * MB  # 16 nodes at their full 125 MB/s each
    whole = sim.registry(scenario(16, registry_up=fast))
    pieces = sim.registry(scenario(16, registry_up=fast, piece=150 * MB / 4))
    upload = 150 * MB / RATE
    assert whole.makespan == pytest.approx(upload + 150 * MB / (125 * MB))
    assert pieces.makespan == pytest.approx(upload + 150 * MB / 4 / (125 * MB))
    # a slow registry still bounds it: 16 copies through 125 MB/s, started after the first piece
    slow = sim.registry(scenario(16, registry_up=125 * MB, piece=150 * MB / 4))
    assert slow.makespan == pytest.approx(upload / 4 + 16 * 150 * MB / (125 * MB))
    with pytest.raises(InputError):
        scenario(2, piece=151 * MB)


def test_a_p2p_mirror_stays_near_one_copy_at_scale() -> None:
    sc = scenario(10_000, registry_up=125 * MB, preloaded=True)
    out = sim.registry_p2p(sc)
    one = 150 * MB / (125 * MB)
    # the swarm's uploads (90% efficient) run each node a little under its line rate
    assert one / 0.9 <= out.percentile(50) < 1.6 * one  # plus log2(N) chunk rounds to spread
    assert out.busiest_bytes < 10_000 * 150 * MB / 10


def test_ten_thousand_nodes_with_deaths_all_accounted_for() -> None:
    deaths = sim.random_deaths(10_000, 0.001, 5.0, seed=3)
    sc = scenario(10_000, deaths=deaths)
    out = sim.relay(sc, fanout=4)
    assert 0 < out.lost <= 10
    assert len(out.finish) + out.lost == 10_000


def test_percentiles_are_nearest_rank() -> None:
    out = sim.Outcome("x", scenario(1), tuple(float(i) for i in range(1, 101)), 0, 0.0, "sender", 0.0)
    assert out.percentile(50) == 50.0
    assert out.percentile(99) == 99.0
    empty = sim.Outcome("x", scenario(1), (), 1, 0.0, "sender", 0.0)
    assert math.isnan(empty.percentile(50))


@pytest.mark.parametrize(
    "bad",
    [
        {"nodes": 0},
        {"size": -1.0},
        {"sender_up": float("nan")},
        {"chunk": 1e12},
        {"parallel": 0},
        {"deaths": ((99, 1.0),)},
    ],
)
def test_bad_scenarios_are_input_errors(bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        scenario(4, **bad)


def test_unknown_mode_and_bad_fanout() -> None:
    with pytest.raises(InputError, match="mode"):
        sim.simulate(scenario(2), "carrier-pigeon")
    with pytest.raises(InputError, match="fanout"):
        sim.relay(scenario(2), fanout=0)


def test_a_slow_relay_holds_back_its_subtree_and_a_slow_leaf_only_itself() -> None:
    # 15 nodes, fan-out 2, root fan-out 1: node 1 heads a subtree of 7 (1, 3, 4, 7..10); 14 is a leaf
    def late(slow: int) -> int:
        sc = scenario(15, disk=1000 * MB, slow=frozenset({slow}), slow_factor=0.01)
        out = sim.relay(sc, fanout=2)
        return sum(1 for t in out.finish if t > 2 * out.finish[0])

    assert late(14) == 1
    assert late(1) == 7
