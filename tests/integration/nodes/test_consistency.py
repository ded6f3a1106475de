"""Cluster consistency on real sandbox nodes (sshd, the real agent, prefix trees): a re-push repairs
a node, rollbacks never launder a tampered tree, and concurrent pushes of one environment (threads,
or two envctl processes with their own state directories) never all report ok while the nodes
differ; status then blames nobody falsely.

To force the one interleaving that used to leave the cluster mixed, a push reaches one node
through a *gated interpreter*: the inventory's ``python`` for that node is a shell script (in the
node's private /tmp) that holds the agent's ``switch`` until the test opens the gate, then runs
python3 as usual. Everything else is the real path: ssh, the agent bundle, the node's store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxNode, SandboxPlan
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.rollback import rollback
from envctl.services.deliver.status import status

pytestmark = pytest.mark.integration

GATE_SCRIPT = """#!/bin/sh
# envctl test gate: hold the agent's switch until {gate}/open exists (at most 120 s)
for a in "$@"; do
  if [ "$a" = switch ]; then
    : > {gate}/arrived
    i=0
    while [ ! -e {gate}/open ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
  fi
done
exec python3 "$@"
"""


def node_of(cluster: SandboxPlan, t: NodeSpec) -> SandboxNode:
    return next(n for n in cluster.nodes if n.name == t.name)


def host_path(cluster: SandboxPlan, t: NodeSpec, node_path: str) -> Path:
    """Where a path of the node's private /opt/envctl or /tmp lies on this machine."""
    node = node_of(cluster, t)
    for private, mine in (("/opt/envctl", "opt"), ("/tmp", "tmp")):
        if node_path == private or node_path.startswith(private + "/"):
            return Path(node.path(mine, *Path(node_path[len(private) :]).parts[1:]))
    raise AssertionError(f"{node_path} is not private to the node")


def state_digest(cluster: SandboxPlan, t: NodeSpec, env: str) -> str | None:
    path = Path(node_of(cluster, t).path("store", "state", f"{env}.json"))
    return str(json.loads(path.read_text())["current"]["digest"]) if path.exists() else None


def run_env(pool: SSHPool, t: NodeSpec, env: str) -> str:
    transport = pool.connect(t)
    try:
        return transport.run([f"{t.prefix_root}/{env}/app/run.sh"]).stdout.decode().strip()
    finally:
        transport.close()


def wait_for(predicate: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@dataclasses.dataclass
class Gate:
    """A gated interpreter on one real node."""

    node: NodeSpec  # the node as the gated push reaches it (python = the script)
    host_dir: Path  # the gate's directory, seen from this machine

    def arrived(self) -> bool:
        return (self.host_dir / "arrived").exists()

    def open(self) -> None:
        (self.host_dir / "open").touch()


@pytest.fixture
def gate(cluster: SandboxPlan, prefix_targets: list[NodeSpec], tmp_path: Path) -> Iterator[Gate]:
    t = prefix_targets[2]
    name = f"envctl-gate-{os.getpid()}-{tmp_path.name}"
    host_dir = host_path(cluster, t, f"/tmp/{name}")
    host_dir.mkdir(parents=True)
    script = host_dir / "python"
    script.write_text(GATE_SCRIPT.format(gate=f"/tmp/{name}"))
    script.chmod(0o755)
    g = Gate(dataclasses.replace(t, python=f"/tmp/{name}/python"), host_dir)
    try:
        yield g
    finally:
        g.open()  # never leave a push waiting
        for p in sorted(host_dir.iterdir()):
            p.unlink()
        host_dir.rmdir()


# ---------------------------------------------------------------- finding 7
def test_repush_repairs_a_removed_symlink(
    cluster: SandboxPlan, prefix_targets: list[NodeSpec], pool: SSHPool, make_image: Callable[..., OciImage]
) -> None:
    img, env = make_image("s9-repair"), "s9repair"
    opts = PushOptions(env=env, idle_timeout=10)
    assert push(img, prefix_targets, pool, opts).outcome == "all"
    victim = prefix_targets[1]
    host_path(cluster, victim, f"{victim.prefix_root}/{env}").unlink()
    again = push(img, prefix_targets, pool, opts)
    assert again.outcome == "all" and again.exit_code == 0, again.as_json()
    fixed = again.nodes[victim.name]
    assert fixed.status == "ok" and "missing" in str(fixed.repaired), again.as_json()  # type: ignore[union-attr]
    assert {again.nodes[t.name].status for t in prefix_targets if t is not victim} == {"unchanged"}
    assert run_env(pool, victim, env) == "envmod s9-repair"
    assert not status(prefix_targets, pool, env, verify=True).drifted


def test_rollbacks_do_not_launder_a_tampered_tree_and_verify_sees_a_careful_tamper(
    cluster: SandboxPlan, prefix_targets: list[NodeSpec], pool: SSHPool, make_image: Callable[..., OciImage]
) -> None:
    v1, v2, env = make_image("s9-t1"), make_image("s9-t2"), "s9tamper"
    opts = PushOptions(env=env, idle_timeout=10)
    assert push(v1, prefix_targets, pool, opts).outcome == "all"
    assert push(v2, prefix_targets, pool, opts).outcome == "all"
    victim = prefix_targets[0]
    tree = host_path(cluster, victim, f"{victim.prefix_root}/{env}@{v2.manifest.digest[7:]}")
    (tree / "app" / "run.sh").write_text("#!/bin/sh\necho pwned\n")
    (tree / "app" / "extra.py").write_text("import os\n")
    for _ in range(2):
        back = rollback(env, prefix_targets, pool)
        assert back.outcome == "all", back.as_json()
    assert {state_digest(cluster, t, env) for t in prefix_targets} == {v2.manifest.digest}
    assert run_env(pool, victim, env) == "envmod s9-t2"  # the image's tree, not the tampered one
    assert not (tree / "app" / "extra.py").exists()
    assert not status(prefix_targets, pool, env, verify=True).drifted

    # same size, mtime put back: the cheap fingerprint cannot tell, --verify can, a push repairs
    script = tree / "app" / "run.sh"
    st = script.stat()
    script.write_text(script.read_text().replace("envmod", "evilmd"))
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not status(prefix_targets, pool, env).drifted
    deep = status(prefix_targets, pool, env, verify=True)
    assert [n for n, s in deep.nodes.items() if s.envs[env].drift] == [victim.name]  # type: ignore[union-attr]
    assert "contents" in str(deep.nodes[victim.name].envs[env].drift)  # type: ignore[union-attr]
    again = push(v2, prefix_targets, pool, opts)
    assert again.nodes[victim.name].status == "ok" and again.nodes[victim.name].repaired  # type: ignore[union-attr]
    assert run_env(pool, victim, env) == "envmod s9-t2"
    assert not status(prefix_targets, pool, env, verify=True).drifted


# ---------------------------------------------------------------- finding 8
def _consistent(cluster: SandboxPlan, targets: list[NodeSpec], env: str, reports: list[Any]) -> str:
    digests = {state_digest(cluster, t, env) for t in targets}
    assert len(digests) == 1, f"the cluster ended mixed: {digests}"
    oks = [r for r in reports if r["ok"]]
    assert oks, "nobody won"
    assert all(r["lost_to"] is not None for r in reports if not r["ok"]), reports
    newest = max((r for r in reports if r["generation"]), key=lambda r: (r["generation"], r["token"]))
    assert newest["ok"] and {newest["digest"]} == digests
    return str(newest["digest"])


def test_three_pushes_at_once_never_all_ok_while_mixed(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    gate: Gate,
) -> None:
    env = "s9race"
    a, b, c = (make_image(f"s9-{x}") for x in "abc")
    opts = PushOptions(env=env, idle_timeout=10)
    gated = [*prefix_targets[:2], gate.node]
    reports: dict[str, DeliveryReport] = {}

    def go(key: str, img: OciImage, targets: list[NodeSpec]) -> None:
        reports[key] = push(img, targets, pool, opts)

    first = threading.Thread(target=go, args=("a", a, gated))
    first.start()
    wait_for(gate.arrived)  # a is about to switch n3 ...
    wait_for(lambda: all(state_digest(cluster, t, env) == a.manifest.digest for t in prefix_targets[:2]))
    others = [threading.Thread(target=go, args=(k, i, prefix_targets)) for k, i in (("b", b), ("c", c))]
    for th in others:  # ... when two more pushes of the same env start at once
        th.start()
    for th in others:
        th.join(180)
    gate.open()
    first.join(180)
    docs = [reports[k].as_json() for k in "abc"]
    assert not docs[0]["ok"] and docs[0]["lost_to"] is not None, docs[0]  # a switched n3 last: lost
    winner = _consistent(cluster, prefix_targets, env, docs)
    version = {a.manifest.digest: "a", b.manifest.digest: "b", c.manifest.digest: "c"}[winner]
    assert all(run_env(pool, t, env) == f"envmod s9-{version}" for t in prefix_targets)
    st = status(prefix_targets, pool, env)
    assert not st.drifted, st.as_json()
    assert {s.envs[env].desired for s in st.nodes.values()} == {winner}  # type: ignore[union-attr]


def _envctl(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ENVCTL_STATE_DIR": str(state_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "envctl", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, err = proc.communicate(timeout=240)
    try:
        return proc.returncode, json.loads(out)
    except ValueError:
        raise AssertionError(f"exit {proc.returncode}: {out}\n{err}") from None


def test_two_senders_with_their_own_state_dirs(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    make_image: Callable[..., OciImage],
    gate: Gate,
    tmp_path: Path,
) -> None:
    env = "s9senders"
    first_img, second_img = make_image("s9-first"), make_image("s9-second")
    from envctl.core import sandbox as plans
    from envctl.core import toml_out

    document = plans.inventory_document(cluster)
    for entry in document["nodes"].values():
        entry["runtime"] = "prefix"
    plain = tmp_path / "plain.toml"
    plain.write_text(toml_out.dumps(document))
    document["nodes"][gate.node.name]["python"] = gate.node.python  # the first sender's view of n3
    gated = tmp_path / "gated.toml"
    gated.write_text(toml_out.dumps(document))
    a_dir, b_dir = tmp_path / "sender-a", tmp_path / "sender-b"

    first = _envctl(a_dir, "push", str(first_img.root), "-i", str(gated), "--env", env, "--json")
    wait_for(gate.arrived)
    wait_for(
        lambda: all(state_digest(cluster, t, env) == first_img.manifest.digest for t in prefix_targets[:2])
    )
    code_b, doc_b = _finish(
        _envctl(b_dir, "push", str(second_img.root), "-i", str(plain), "--env", env, "--json")
    )
    gate.open()
    code_a, doc_a = _finish(first)
    assert code_b == 0 and doc_b["ok"], doc_b
    assert code_a == 1 and not doc_a["ok"], doc_a  # it switched n3 after the newer push: it lost
    assert (
        doc_a["lost_to"]["token"] == doc_b["token"]
        and doc_a["lost_to"]["digest"] == second_img.manifest.digest
    )
    assert "superseded" in doc_a["nodes"][gate.node.name]["error"]
    assert {state_digest(cluster, t, env) for t in prefix_targets} == {second_img.manifest.digest}
    for state_dir in (a_dir, b_dir):  # either sender's status, each with its own ledger
        code, doc = _finish(_envctl(state_dir, "status", env, "-i", str(plain), "--json"))
        assert code == 0 and doc["drift"] is False, doc
