"""push --verify and the fleet's shared policy, through the real agent on temp-directory 'nodes'
(LocalTransport). The smoke check itself needs a runnable image and a chroot (the integration
tests run it); here ``check`` is replaced by one that fails where a test says, so what push does
with a verdict (keep the switch, or switch every node back) runs for real."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool, LocalTransport
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.core.delivery import Delivered, NotDelivered
from envctl.core.node import NodeSpec
from envctl.core.verification import NotVerified, Verified
from envctl.errors import TransportError
from envctl.services.deliver import verify as proof
from envctl.services.deliver.fleet_push import push_fleet
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import PushOptions, push

OPTS = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)


def image(tmp_path: Path, version: str) -> OciImage:
    write_layout(tmp_path / f"img-{version}", app_layers(version, 0))
    return read_image(tmp_path / f"img-{version}")


def nodes(tmp_path: Path, *names: str) -> list[NodeSpec]:
    return [
        NodeSpec(
            n,
            "localhost",
            runtime="prefix",
            store=str(tmp_path / n / "store"),
            prefix_root=str(tmp_path / n / "envs"),
        )  # type: ignore[arg-type]
        for n in names
    ]


def active(t: NodeSpec) -> str:
    return (Path(t.prefix_root) / "demo" / "app" / "envmod.py").read_text()


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """``check`` that fails on the nodes named in ``fail``; records what each node was asked."""
    state: dict[str, object] = {"fail": set(), "asked": {}}

    def check(agent: NodeClient, env: str, digest: str | None, gpus: bool, timeout: float = 0) -> Verified:
        state["asked"][agent.node] = (env, digest, gpus)  # type: ignore[index]
        if agent.node in state["fail"]:  # type: ignore[operator]
            raise NotVerified("verify failed: brokenpkg (brokenpkg: ImportError: x)", digest=digest)
        assert digest is not None
        return Verified(digest, "prefix", "3.11.2", 4)

    monkeypatch.setattr(proof, "check", check)
    return state


def test_a_failed_check_keeps_the_switch_and_fails_the_push(tmp_path: Path, checked: dict) -> None:
    ts = nodes(tmp_path, "n1", "n2", "n3")
    v1, v2 = image(tmp_path, "1"), image(tmp_path, "2")
    push(v1, ts, LocalPool(), OPTS)
    checked["fail"] = {"n2"}
    report = push(v2, ts, LocalPool(), replace(OPTS, verify=True, gpu_nodes=frozenset({"n3"})))
    assert report.exit_code == 1 and report.outcome == "partial"
    assert all(active(t) == "VERSION = '2'\n" for t in ts)  # switched everywhere: no --atomic
    assert report.verify is not None and sorted(report.verify.failed) == ["n2"]
    assert isinstance(report.nodes["n2"], Delivered)  # it runs v2, and failed its check
    assert checked["asked"] == {
        "n1": ("demo", v2.manifest.digest, False),
        "n2": ("demo", v2.manifest.digest, False),
        "n3": ("demo", v2.manifest.digest, True),  # doctor's facts say it has GPUs
    }
    assert "verify" in report.timings


def test_atomic_switches_every_node_back_when_one_check_fails(tmp_path: Path, checked: dict) -> None:
    ts = nodes(tmp_path, "n1", "n2", "n3")
    v1, v2 = image(tmp_path, "1"), image(tmp_path, "2")
    push(v1, ts, LocalPool(), OPTS)
    checked["fail"] = {"n2"}
    report = push(v2, ts, LocalPool(), replace(OPTS, verify=True, atomic=True))
    assert report.exit_code == 1 and report.outcome == "none"
    assert all(active(t) == "VERSION = '1'\n" for t in ts)
    n2 = report.nodes["n2"]
    assert isinstance(n2, NotDelivered) and n2.status == "failed" and "switched back (--atomic)" in n2.message
    n1 = report.nodes["n1"]
    assert isinstance(n1, NotDelivered) and n1.status == "skipped"
    assert n1.message == "switched back: verify failed on n2 (--atomic)"
    # with every check passing, --atomic --verify switches and stays
    checked["fail"] = set()
    again = push(v2, ts, LocalPool(), replace(OPTS, verify=True, atomic=True))
    assert again.exit_code == 0 and all(active(t) == "VERSION = '2'\n" for t in ts)


def unreachable(*names: str) -> LocalPool:
    def dial(node: NodeSpec) -> LocalTransport:
        if node.name in names:
            raise TransportError(node.name, "connection refused")
        return LocalTransport(node.name)

    return LocalPool(dial)


@pytest.mark.parametrize("policy", [{"atomic": True}, {"max_fail": 0}])
def test_one_variant_failing_stops_every_variant(tmp_path: Path, policy: dict) -> None:
    va, vb = nodes(tmp_path, "a1", "a2"), nodes(tmp_path, "b1")
    old, new = image(tmp_path, "old"), image(tmp_path, "new")
    push(old, va, LocalPool(), OPTS)
    reports = push_fleet(
        {"va": new, "vb": new}, {"va": va, "vb": vb}, unreachable("b1"), replace(OPTS, **policy)
    )
    assert reports["vb"].nodes["b1"].message == "b1: connection refused"  # type: ignore[union-attr]
    for name in ("a1", "a2"):
        entry = reports["va"].nodes[name]
        assert isinstance(entry, NotDelivered) and entry.status == "skipped"
        # --atomic: staged, not switched; --max-fail 0 exceeded before staging: not even staged
        assert entry.message.startswith(("not activated: ", "failure budget exceeded"))
    assert all(active(t) == "VERSION = 'old'\n" for t in va)
    # without a policy across the fleet, the variant that can switch does
    reports = push_fleet({"va": new, "vb": new}, {"va": va, "vb": vb}, unreachable("b1"), OPTS)
    assert reports["va"].outcome == "all" and all(active(t) == "VERSION = 'new'\n" for t in va)


def test_a_failed_check_in_one_variant_switches_the_others_back_under_atomic(
    tmp_path: Path, checked: dict
) -> None:
    va, vb = nodes(tmp_path, "a1", "a2"), nodes(tmp_path, "b1")
    old, new_a, new_b = image(tmp_path, "old"), image(tmp_path, "na"), image(tmp_path, "nb")
    push(old, [*va, *vb], LocalPool(), OPTS)
    checked["fail"] = {"b1"}
    opts = replace(OPTS, verify=True, atomic=True)
    reports = push_fleet({"va": new_a, "vb": new_b}, {"va": va, "vb": vb}, LocalPool(), opts)
    assert all(active(t) == "VERSION = 'old'\n" for t in [*va, *vb])
    for name in ("a1", "a2"):
        entry = reports["va"].nodes[name]
        assert isinstance(entry, NotDelivered)
        assert entry.message == "switched back: a node of another variant failed (--atomic)"
    assert reports["va"].verify is not None and reports["va"].verify.ok  # they passed themselves
    assert "switched back (--atomic)" in reports["vb"].nodes["b1"].message  # type: ignore[union-attr]
