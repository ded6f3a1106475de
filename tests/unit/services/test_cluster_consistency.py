"""Cluster consistency through the real agent on local 'nodes': a re-push repairs, a rollback never
launders a tampered tree, and concurrent operations on one environment never all report ok while
the nodes differ (issue 9, findings 7 and 8)."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool, LocalTransport
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.transport import CommandResult
from envctl.errors import TransportError
from envctl.services.deliver.gc import gc
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.rollback import rollback
from envctl.services.deliver.status import status

OPTS = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)
local = LocalPool()


def make_image(tmp_path: Path, version: str) -> OciImage:
    where = tmp_path / f"img-{version}"
    if not where.exists():
        write_layout(where, app_layers(version))
    return read_image(where)


def nodes(tmp_path: Path, n: int = 3) -> list[NodeSpec]:
    return [
        NodeSpec(
            f"n{i}",
            "localhost",
            runtime="prefix",
            store=str(tmp_path / f"n{i}" / "store"),
            prefix_root=str(tmp_path / f"n{i}" / "envs"),
        )
        for i in range(n)
    ]


def link(t: NodeSpec, env: str = "demo") -> Path:
    return Path(t.prefix_root) / env


def tree(t: NodeSpec, img: OciImage, env: str = "demo") -> Path:
    return Path(t.prefix_root) / f"{env}@{img.manifest.digest[7:]}"


def active(t: NodeSpec) -> str:
    return (link(t) / "app" / "envmod.py").read_text()


def digest_on(t: NodeSpec) -> str:
    return str(json.loads((Path(t.store) / "state" / "demo.json").read_text())["current"]["digest"])


# ---------------------------------------------------------------- finding 7: repair, no laundering
def test_repush_repairs_a_removed_env_symlink(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    v1 = make_image(tmp_path, "1")
    assert push(v1, ts, local, OPTS).outcome == "all"
    link(ts[1]).unlink()
    again = push(v1, ts, local, OPTS)
    assert again.outcome == "all" and again.exit_code == 0
    fixed = again.nodes["n1"]
    assert fixed.status == "ok" and "missing" in str(fixed.repaired)  # type: ignore[union-attr]
    assert {again.nodes[n].status for n in ("n0", "n2")} == {"unchanged"}
    assert os.readlink(link(ts[1])) == f"demo@{v1.manifest.digest[7:]}"
    assert active(ts[1]) == "VERSION = '1'\n"
    assert not status(ts, local, "demo", verify=True).drifted


def test_repush_repairs_an_edited_tree_and_a_foreign_tree_is_not_reused(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1 = make_image(tmp_path, "1")
    # a directory where n1's tree goes, that envctl did not unpack: it must not be trusted
    (tree(ts[1], v1) / "app").mkdir(parents=True)
    (tree(ts[1], v1) / "app" / "envmod.py").write_text("VERSION = 'planted'\n")
    assert push(v1, ts, local, OPTS).outcome == "all"
    assert active(ts[1]) == "VERSION = '1'\n"
    (tree(ts[0], v1) / "app" / "envmod.py").write_text("VERSION = 'edited'\n")
    again = push(v1, ts, local, OPTS)
    assert again.nodes["n0"].status == "ok" and "changed" in str(again.nodes["n0"].repaired)  # type: ignore[union-attr]
    assert again.nodes["n1"].status == "unchanged"
    assert active(ts[0]) == "VERSION = '1'\n"
    assert [p.name for p in Path(ts[0].prefix_root).iterdir() if p.name.startswith(".")] == []
    assert not status(ts, local, "demo", verify=True).drifted


@pytest.mark.parametrize("victim", ["current", "previous"])
def test_rollbacks_never_launder_a_tampered_tree(tmp_path: Path, victim: str) -> None:
    (t,) = nodes(tmp_path, 1)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, [t], local, OPTS)
    push(v2, [t], local, OPTS)
    img = v2 if victim == "current" else v1
    (tree(t, img) / "app" / "envmod.py").write_text("VERSION = 'tampered'\n")
    (tree(t, img) / "app" / "extra.py").write_text("import os\n")
    for _ in range(2):
        assert rollback("demo", [t], local).outcome == "all"
    for version, img_ in (("1", v1), ("2", v2)):  # both trees are the images' own again
        assert (tree(t, img_) / "app" / "envmod.py").read_text() == f"VERSION = '{version}'\n"
        assert not (tree(t, img_) / "app" / "extra.py").exists()
    assert digest_on(t) == v2.manifest.digest
    assert not status([t], local, "demo", verify=True).drifted


def test_verify_finds_a_tamper_that_kept_size_and_mtime_and_the_next_push_repairs_it(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    v1 = make_image(tmp_path, "1")
    push(v1, [t], local, OPTS)
    victim = tree(t, v1) / "app" / "envmod.py"
    st = victim.stat()
    victim.write_text("VERSION = '9'\n")  # same length
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not status([t], local, "demo").drifted  # the cheap fingerprint cannot see it
    deep = status([t], local, "demo", verify=True)
    assert "contents" in str(deep.nodes["n0"].envs["demo"].drift)  # type: ignore[union-attr]
    assert status([t], local, "demo").drifted  # remembered until repaired
    again = push(v1, [t], local, OPTS)
    assert again.nodes["n0"].status == "ok" and again.nodes["n0"].repaired  # type: ignore[union-attr]
    assert active(t) == "VERSION = '1'\n"
    assert not status([t], local, "demo", verify=True).drifted


# ---------------------------------------------------------------- finding 8: concurrent operations
class Gated(LocalTransport):
    """A LocalTransport whose agent ``switch`` calls on ``node`` wait for ``release()`` (after
    saying they arrived), to force one interleaving of concurrent operations."""

    def __init__(self, node: str, gate: Gate) -> None:
        super().__init__(node)
        self.gate = gate

    def run(self, argv: Sequence[str], **kw: Any) -> CommandResult:
        if self.node == self.gate.node and self.gate.command in argv:
            self.gate.arrive_and_wait()
        return super().run(argv, **kw)


class Gate:
    """Files, so the gate also works across processes."""

    def __init__(self, where: Path, node: str, command: str = "switch") -> None:
        self.where, self.node, self.command = where, node, command
        where.mkdir(parents=True, exist_ok=True)

    def arrive_and_wait(self) -> None:
        (self.where / "arrived").touch()
        deadline = time.monotonic() + 60
        while not (self.where / "open").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def wait_arrived(self) -> None:
        deadline = time.monotonic() + 60
        while not (self.where / "arrived").exists():
            assert time.monotonic() < deadline, "the gated operation never arrived"
            time.sleep(0.02)

    def release(self) -> None:
        (self.where / "open").touch()


def wait_for(predicate: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def gated_pool(gate: Gate) -> LocalPool:
    return LocalPool(lambda t: Gated(t.name, gate))


def consistent(ts: list[NodeSpec], reports: list[DeliveryReport]) -> str:
    """The invariant: the nodes end on one digest; no two operations both report ok unless the
    nodes agree; every one that is not ok and lost names the operation that beat it."""
    digests = {digest_on(t) for t in ts}
    assert len(digests) == 1, f"the cluster ended mixed: {digests}"
    (final,) = digests
    for r in reports:
        if r.outcome != "all":
            assert r.lost_to is not None, r.as_json()
    newest = max(reports, key=lambda r: r.ballot)  # type: ignore[arg-type,return-value]
    assert newest.outcome == "all" and newest.digest == final
    return final


def test_an_older_push_that_switches_after_a_newer_one_loses_and_names_it(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2, v3 = (make_image(tmp_path, v) for v in "123")
    assert push(v1, ts, local, OPTS).outcome == "all"
    gate = Gate(tmp_path / "gate", "n1")
    older: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: older.append(push(v2, ts, gated_pool(gate), OPTS)))
    worker.start()
    gate.wait_arrived()
    wait_for(lambda: digest_on(ts[0]) == v2.manifest.digest)  # v2 switched n0, n1 is next
    newer = push(v3, ts, local, OPTS)  # claims both nodes over v2, switches both
    gate.release()
    worker.join(60)
    (old,) = older
    assert newer.outcome == "all" and newer.exit_code == 0
    assert old.outcome == "partial" and old.exit_code == 1
    assert old.lost_to is not None and old.lost_to.digest == v3.manifest.digest
    assert old.lost_to.ballot == newer.ballot and "superseded" in str(old.nodes["n1"])
    assert consistent(ts, [old, newer]) == v3.manifest.digest
    assert all(active(t) == "VERSION = '3'\n" for t in ts)
    st = status(ts, local, "demo")
    assert not st.drifted, st.as_json()  # nobody blamed for the order the pushes finished in
    assert {s.envs["demo"].desired for s in st.nodes.values()} == {v3.manifest.digest}  # type: ignore[union-attr]


def test_three_pushes_at_once_never_end_mixed(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    images = [make_image(tmp_path, v) for v in "abc"]
    for _ in range(2):
        reports: list[DeliveryReport] = []

        def go(img: OciImage, into: list[DeliveryReport] = reports) -> None:
            into.append(push(img, ts, local, OPTS))

        threads = [threading.Thread(target=go, args=(i,)) for i in images]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert len(reports) == 3
        consistent(ts, reports)
        assert not status(ts, local, "demo").drifted


def _sender(state_dir: str, image: str, ts: list[NodeSpec], gate: Gate | None, out: str) -> None:
    os.environ["ENVCTL_STATE_DIR"] = state_dir
    report = push(read_image(Path(image)), ts, gated_pool(gate) if gate else local, OPTS)
    Path(out).write_text(json.dumps(report.as_json()))


def test_two_senders_with_their_own_ledgers_see_each_others_generation(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    gate = Gate(tmp_path / "gate", "n1")
    ctx = multiprocessing.get_context("fork")
    a = ctx.Process(
        target=_sender, args=(str(tmp_path / "a"), str(v1.root), ts, gate, str(tmp_path / "a.json"))
    )
    a.start()
    gate.wait_arrived()
    wait_for(lambda: (Path(ts[0].store) / "state" / "demo.json").exists())  # a switched n0, n1 is next
    b = ctx.Process(
        target=_sender, args=(str(tmp_path / "b"), str(v2.root), ts, None, str(tmp_path / "b.json"))
    )
    b.start()
    b.join(60)
    gate.release()
    a.join(60)
    first, second = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert second["ok"] and not first["ok"]
    assert first["lost_to"]["digest"] == v2.manifest.digest and first["lost_to"]["token"] == second["token"]
    assert {digest_on(t) for t in ts} == {v2.manifest.digest}
    for ledger_of in ("a", "b"):  # either sender's status: no false drift
        os.environ["ENVCTL_STATE_DIR"] = str(tmp_path / ledger_of)
        assert not status(ts, local, "demo").drifted


def test_a_rollback_outbids_a_push_in_flight_and_gc_keeps_what_the_push_claimed(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2, v3 = (make_image(tmp_path, v) for v in "123")
    push(v1, ts, local, OPTS)
    push(v2, ts, local, OPTS)
    gate = Gate(tmp_path / "gate", "n0", command="prepare")
    pushed: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: pushed.append(push(v3, ts, gated_pool(gate), OPTS)))
    worker.start()
    gate.wait_arrived()
    wait_for(lambda: tree(ts[1], v3).is_dir())  # v3 is staged on both, prepared on n1, switched nowhere
    assert all(r.removed_trees == () for r in gc(ts, local, max_age_hours=0).succeeded.values())
    assert tree(ts[1], v3).is_dir()  # the claimed push's tree survived gc
    back = rollback("demo", ts, local)
    gate.release()
    worker.join(60)
    (p,) = pushed
    assert back.outcome == "all" and back.digest == v1.manifest.digest
    assert p.outcome == "none" and p.lost_to is not None and p.lost_to.op == "rollback"
    assert all(active(t) == "VERSION = '1'\n" for t in ts)
    assert not status(ts, local, "demo").drifted


def test_rollback_refuses_when_the_nodes_disagree_on_the_version_before(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2, v3 = (make_image(tmp_path, v) for v in "123")
    push(v1, ts, local, OPTS)
    push(v3, ts[1:], local, OPTS)
    push(v2, ts, local, OPTS)  # n0: v1 -> v2, n1: v3 -> v2
    back = rollback("demo", ts, local)
    assert back.outcome == "none" and "disagree" in str(back.nodes["n0"])
    assert all(active(t) == "VERSION = '2'\n" for t in ts)


def test_status_blames_a_node_that_missed_a_push_it_was_part_of_only(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    v1, v2, v3 = (make_image(tmp_path, v) for v in "123")
    push(v1, ts, local, OPTS)
    push(v2, ts[:2], local, OPTS)  # n2 was not part of it: not drift
    assert not status(ts, local, "demo").drifted

    def dial(t: NodeSpec) -> LocalTransport:
        if t.name == "n1":
            raise TransportError("n1", "connection refused")
        return LocalTransport(t.name)

    assert push(v3, ts, LocalPool(dial), OPTS).outcome == "partial"
    st = status(ts, local, "demo")
    n1 = st.nodes["n1"].envs["demo"]  # type: ignore[union-attr]
    assert "missed the switch" in str(n1.drift) and n1.desired == v3.manifest.digest
    assert [n for n, s in st.nodes.items() if s.envs["demo"].drift] == ["n1"]  # type: ignore[union-attr]
    assert push(v3, ts, local, OPTS).outcome == "all"
    assert not status(ts, local, "demo").drifted


def test_a_claim_refused_anywhere_stops_the_push_before_it_stages(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, ts, local, OPTS)
    gate = Gate(tmp_path / "gate", "n1", command="claim")
    older: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: older.append(push(v2, ts, gated_pool(gate), OPTS)))
    worker.start()
    gate.wait_arrived()  # the older push read every node and claimed n0; n1's claim waits
    newer = push(v1, ts, local, OPTS)
    gate.release()
    worker.join(60)
    (old,) = older
    assert newer.outcome == "all" and old.outcome == "none"
    assert {r.status for r in old.nodes.values()} == {"skipped"}  # type: ignore[union-attr]
    assert all(r.bytes_sent == 0 for r in old.nodes.values())  # type: ignore[union-attr]
    assert all(active(t) == "VERSION = '1'\n" for t in ts)
