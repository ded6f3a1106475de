"""push through the real agent on 'nodes' that are temp directories reached by LocalTransport."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import CutTransport, LocalPool, LocalTransport
from nd_oci import app_layers, write_layout

from envctl.adapters import ledger
from envctl.adapters.oci_layout import OciImage, read_image
from envctl.core.node import NodeSpec
from envctl.errors import TransportError
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.rollback import rollback
from envctl.services.deliver.status import status


def make_image(tmp_path: Path, version: str, big: int = 0) -> OciImage:
    write_layout(tmp_path / f"img-{version}", app_layers(version, big))
    return read_image(tmp_path / f"img-{version}")


def node(name: str, root: Path, runtime: str = "prefix") -> NodeSpec:
    return NodeSpec(
        name, "localhost", runtime=runtime, store=str(root / "store"), prefix_root=str(root / "envs")
    )  # type: ignore[arg-type]


def nodes(tmp_path: Path, n: int = 3) -> list[NodeSpec]:
    return [node(f"n{i}", tmp_path / f"n{i}") for i in range(n)]


local = LocalPool()


def active(t: NodeSpec, env: str = "demo") -> str:
    return (Path(t.prefix_root) / env / "app" / "envmod.py").read_text()


OPTS = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)


def test_push_sends_only_missing_blobs_and_switches(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    v1, v2 = make_image(tmp_path, "1", big=50_000), make_image(tmp_path, "2", big=50_000)
    first = push(v1, ts, local, OPTS)
    assert first.outcome == "all" and first.exit_code == 0
    total = sum(b.size for b in v1.blobs)
    assert all(r.bytes_sent == total for r in first.nodes.values())
    again = push(v1, ts, local, OPTS)
    assert {r.status for r in again.nodes.values()} == {"unchanged"}
    assert all(r.bytes_sent == 0 for r in again.nodes.values())
    second = push(v2, ts, local, OPTS)
    changed = sum(b.size for b in v2.blobs if b not in v1.blobs)
    assert all(r.bytes_sent == changed for r in second.nodes.values())
    assert changed < total / 10  # only the app layer, config and manifest moved
    for t in ts:
        assert active(t) == "VERSION = '2'\n"
        assert os.readlink(Path(t.prefix_root) / "demo") == f"demo@{v2.manifest.digest[7:]}"
    assert second.nodes["n0"].previous == v1.manifest.digest


def test_interrupted_blob_resumes_instead_of_restarting(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    img = make_image(tmp_path, "1", big=300_000)
    cut = push(img, [t], LocalPool(lambda t: CutTransport(t.name, 120_000)), OPTS)
    assert cut.nodes["n0"].status == "failed" and "connection lost" in str(cut.nodes["n0"].message)
    partials = list((Path(t.store) / "tmp").iterdir())
    assert len(partials) == 1 and partials[0].stat().st_size > 100_000
    kept = partials[0].stat().st_size
    again = push(img, [t], local, OPTS)
    total = sum(b.size for b in img.blobs)
    assert again.nodes["n0"].status == "ok"
    assert again.nodes["n0"].resumed_from == kept
    assert again.nodes["n0"].bytes_sent == total - kept
    assert active(t) == "VERSION = '1'\n"


def test_corrupt_partial_is_detected_discarded_and_resent(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    img = make_image(tmp_path, "1", big=100_000)
    push(img, [t], LocalPool(lambda t: CutTransport(t.name, 60_000)), OPTS)
    (partial,) = (Path(t.store) / "tmp").iterdir()
    with partial.open("r+b") as fh:
        fh.write(b"garbage!")
    bad = push(img, [t], local, OPTS)
    assert bad.nodes["n0"].status == "failed" and "corrupt" in str(bad.nodes["n0"].message)
    assert list((Path(t.store) / "tmp").iterdir()) == []
    good = push(img, [t], local, OPTS)
    assert good.nodes["n0"].status == "ok" and good.nodes["n0"].resumed_from == 0


def test_corrupt_blob_in_store_is_detected_and_resent(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    img = make_image(tmp_path, "1")
    push(img, [t], local, OPTS)
    layer = img.layers[1]
    path = Path(t.store) / "blobs" / "sha256" / layer.digest[7:]
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    again = push(img, [t], local, OPTS)
    assert again.nodes["n0"].blobs_sent == 1 and again.nodes["n0"].bytes_sent == layer.size
    assert path.read_bytes() == img.blob_path(layer.digest).read_bytes()


def test_concurrent_pushes_to_one_node_are_serialised(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, [t], local, OPTS)  # installs the agent and creates the store
    lock = os.open(Path(t.store) / "lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # someone else is pushing
    done: list[float] = []
    worker = threading.Thread(target=lambda: done.append(push(v2, [t], local, OPTS) and time.monotonic()))
    worker.start()
    time.sleep(1.5)
    assert done == [] and active(t) == "VERSION = '1'\n"  # waiting on the lock, nothing switched
    released = time.monotonic()
    os.close(lock)
    worker.join(30)
    assert done and done[0] >= released and active(t) == "VERSION = '2'\n"

    # two real pushes at once: serialised on the node; the newer ballot wins, and the other one
    # either finished before it claimed, or reports that it lost and to which push
    results = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, push(i, [t], local, OPTS)))
        for i in (v1, v2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    state = json.loads((Path(t.store) / "state" / "demo.json").read_text())
    assert {state["current"]["digest"], state["previous"]["digest"]} <= {
        v1.manifest.digest,
        v2.manifest.digest,
    }
    newest = max(results.values(), key=lambda r: r.ballot)  # type: ignore[arg-type,return-value]
    assert newest.outcome == "all" and state["current"]["digest"] == newest.digest
    (other,) = (r for r in results.values() if r is not newest)
    assert other.outcome == "all" or (other.lost_to and other.lost_to.ballot == newest.ballot)
    assert newest.ballot and state["current"]["generation"] == newest.ballot.generation


def test_locked_store_times_out_with_a_clear_error(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    img = make_image(tmp_path, "1")
    push(img, [t], local, OPTS)
    lock = os.open(Path(t.store) / "lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        res = push(make_image(tmp_path, "2"), [t], local, PushOptions(env="demo", lock_timeout=0.5))
    finally:
        os.close(lock)
    assert res.nodes["n0"].status == "failed" and "locked by another envctl" in str(res.nodes["n0"].message)


def test_symlink_switch_is_atomic_for_readers(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, [t], local, OPTS)
    push(v2, [t], local, OPTS)
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(active(t))
            except OSError as exc:  # a missing link or a half tree would show up here
                errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    for _ in range(6):
        assert rollback("demo", [t], local).outcome == "all"
    stop.set()
    th.join()
    assert errors == [] and seen == {"VERSION = '1'\n", "VERSION = '2'\n"}
    assert sorted(p.name for p in Path(t.prefix_root).iterdir() if not p.name.startswith("demo@")) == ["demo"]


def test_rollback_goes_back_and_forth(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    assert rollback("demo", ts, local).outcome == "none"  # nothing to roll back to
    push(v1, ts, local, OPTS)
    push(v2, ts, local, OPTS)
    back = rollback("demo", ts, local)
    assert back.outcome == "all" and back.digest == v1.manifest.digest
    assert all(active(t) == "VERSION = '1'\n" for t in ts)
    assert all(r.previous == v2.manifest.digest for r in back.nodes.values())
    st = status(ts, local, "demo")
    assert not st.drifted  # the ledger knows about the rollback
    assert [e.kind for e in ledger.events()][:3] == ["rollback", "push", "push"]


def test_atomic_prepare_failure_switches_no_node(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, ts, local, OPTS)
    # n1 cannot unpack: its copy of the new tree's path is taken by a file
    Path(ts[1].prefix_root, f"demo@{v2.manifest.digest[7:]}").write_text("in the way")
    res = push(v2, ts, local, PushOptions(env="demo", atomic=True))
    assert res.outcome == "none"
    assert res.nodes["n1"].status == "failed" and "prepare" in str(res.nodes["n1"].message)
    assert {res.nodes[n].status for n in ("n0", "n2")} == {"skipped"}
    assert all(active(t) == "VERSION = '1'\n" for t in ts)


def test_atomic_switch_failure_switches_the_others_back(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, ts, local, OPTS)
    link = Path(ts[2].prefix_root) / "demo"
    link.unlink()
    link.mkdir()  # a real directory where the symlink should be: the rename fails on n2
    (link / "app").mkdir()
    (link / "app" / "envmod.py").write_text("VERSION = '1'\n")
    res = push(v2, ts, local, PushOptions(env="demo", atomic=True))
    assert res.nodes["n2"].status == "failed"
    assert res.nodes["n0"].status == res.nodes["n1"].status == "skipped"
    assert all(active(t) == "VERSION = '1'\n" for t in ts)
    for t in ts[:2]:
        state = json.loads((Path(t.store) / "state" / "demo.json").read_text())
        assert state["current"]["digest"] == v1.manifest.digest


def test_unreachable_node_and_failure_budget(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    img = make_image(tmp_path, "1")

    def dial(t: NodeSpec) -> LocalTransport:
        if t.name == "n1":
            raise TransportError("n1", "connection refused")
        return LocalTransport(t.name)

    flaky = LocalPool(dial)
    res = push(img, ts, flaky, PushOptions(env="demo", max_fail=0))
    assert res.outcome == "none" and res.exit_code == 1
    assert res.nodes["n1"].message == "n1: connection refused"
    assert {res.nodes[n].status for n in ("n0", "n2")} == {"skipped"}
    res = push(img, ts, flaky, PushOptions(env="demo"))  # no budget: activate where staged
    assert res.outcome == "partial" and res.nodes["n0"].status == "ok"


def test_status_reports_drift_behind_envctls_back(tmp_path: Path) -> None:
    ts = nodes(tmp_path, 2)
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    push(v1, ts, local, OPTS)
    push(v2, ts, local, OPTS)
    assert not status(ts, local).drifted
    (Path(ts[0].prefix_root) / "demo" / "app" / "envmod.py").write_text("VERSION = 'hacked'\n")
    link = Path(ts[1].prefix_root) / "demo"
    link.unlink()
    link.symlink_to(f"demo@{v1.manifest.digest[7:]}")
    st = status(ts, local)
    assert st.drifted
    assert "changed" in str(st.nodes["n0"].envs["demo"].drift)
    assert "points to" in str(st.nodes["n1"].envs["demo"].drift)
    assert st.nodes["n0"].envs["demo"].desired == v2.manifest.digest


def test_node_without_python_is_reported_and_the_others_proceed(tmp_path: Path) -> None:
    ts = nodes(tmp_path)
    img = make_image(tmp_path, "1")

    broken = [ts[0], ts[1], node("n2", tmp_path / "n2")]

    class NotFound(LocalTransport):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def]
            from envctl.core.transport import CommandResult

            return CommandResult(tuple(argv), 127, b"", b"sh: python3: not found\n")

    res = push(
        img, broken, LocalPool(lambda t: NotFound(t.name) if t.name == "n2" else LocalTransport(t.name)), OPTS
    )
    assert res.outcome == "partial"
    assert "python3 not found" in str(res.nodes["n2"].message)
    assert res.nodes["n0"].status == res.nodes["n1"].status == "ok"


def test_gc_keeps_current_and_previous_and_frees_the_rest(tmp_path: Path) -> None:
    from envctl.services.deliver.gc import Freed, gc

    (t,) = nodes(tmp_path, 1)
    v1, v2, v3 = (make_image(tmp_path, v, big=20_000) for v in "123")
    for img in (v1, v2, v3):
        assert push(img, [t], local, OPTS).outcome == "all"
    young = gc([t], local, max_age_hours=1)["n0"]
    assert isinstance(young, Freed) and young.removed_blobs == 0  # a push in flight keeps its blobs
    res = gc([t], local, max_age_hours=0)["n0"]
    assert isinstance(res, Freed)
    only_v1 = {b.digest for b in v1.blobs} - {b.digest for b in (*v2.blobs, *v3.blobs)}
    assert res.removed_blobs == len(only_v1) and res.freed_bytes > 0
    assert res.removed_trees == (f"demo@{v1.manifest.digest[7:]}",)
    store = Path(t.store) / "blobs" / "sha256"
    assert all((store / b.digest[7:]).exists() for b in (*v2.blobs, *v3.blobs))
    assert active(t) == "VERSION = '3'\n"
    assert rollback("demo", [t], local).outcome == "all" and active(t) == "VERSION = '2'\n"


def test_oci_runtime_only_stores(tmp_path: Path) -> None:
    t = node("n0", tmp_path, runtime="oci")
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2")
    assert push(v1, [t], local, OPTS).outcome == "all"
    assert push(v2, [t], local, OPTS).outcome == "all"
    assert not (tmp_path / "envs").exists()
    st = status([t], local, "demo").nodes["n0"].envs["demo"]
    assert (st.actual, st.previous, st.drift) == (v2.manifest.digest, v1.manifest.digest, None)
    assert rollback("demo", [t], local).digest == v1.manifest.digest


def test_a_blob_that_shrinks_locally_while_sent_is_an_input_error(tmp_path: Path) -> None:
    from envctl.errors import InputError
    from envctl.services.deliver.nodeclient import FrameStream, Missing

    blob = tmp_path / "b"
    blob.write_bytes(b"x" * 10)
    stream = FrameStream([Missing("sha256:" + "0" * 64, 20, 0, blob)], lambda n: None)
    with pytest.raises(InputError, match="shrank"):
        while stream.read(8):
            pass


def test_status_verify_finds_corruption_that_kept_its_mtime(tmp_path: Path) -> None:
    (t,) = nodes(tmp_path, 1)
    img = make_image(tmp_path, "1")
    push(img, [t], local, OPTS)
    path = Path(t.store) / "blobs" / "sha256" / img.layers[0].digest[7:]
    st = path.stat()
    with path.open("r+b") as fh:  # flip a byte in place, then put the mtime back: stamps match
        fh.seek(20)
        byte = fh.read(1)
        fh.seek(20)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not status([t], local).drifted  # the cheap check trusts the stamp
    deep = status([t], local, verify=True)
    assert "corrupt blob" in str(deep.nodes["n0"].envs["demo"].drift)
    again = push(img, [t], local, OPTS)
    assert again.nodes["n0"].blobs_sent == 1  # removed by verify, so sent again
    assert not status([t], local, verify=True).drifted


def test_a_refused_node_gets_nothing_and_counts_as_failed(tmp_path: Path) -> None:
    from envctl.errors import EnvctlError

    ts = nodes(tmp_path)
    img = make_image(tmp_path, "1")
    refused = {
        "n1": EnvctlError("preflight: glibc 2.31 is older than this image's 2.34 floor", hint="upgrade")
    }
    report = push(img, ts, local, OPTS, refused=refused, preflight={"skipped": False})
    assert report.nodes["n1"].status == "failed" and report.outcome == "partial"  # type: ignore[union-attr]
    assert not Path(ts[1].store).exists() and not (Path(ts[1].prefix_root) / "demo").exists()
    assert active(ts[0]) == active(ts[2]) == "VERSION = '1'\n"
    doc = report.as_json()
    assert doc["preflight"] == {"skipped": False} and doc["nodes"]["n1"]["hint"] == "upgrade"
    # with --atomic one refused node keeps every other node on what it ran
    v2 = make_image(tmp_path, "2")
    atomic = push(v2, ts, local, PushOptions(env="demo", atomic=True, lock_timeout=20), refused=refused)
    assert atomic.outcome == "none" and active(ts[0]) == "VERSION = '1'\n"
