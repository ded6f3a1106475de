"""``push --fleet`` on real sandbox nodes: --atomic, --max-fail and --verify hold for the whole
fleet (every variant's nodes), not per variant."""

from __future__ import annotations

from pathlib import Path

from nd_oci import write_layout

from envctl.adapters.fleet_index import IndexedVariant, write_index
from envctl.core.image_needs import ImageNeeds, needs_labels
from envctl.core.sandbox import SandboxPlan
from tests.integration.nodes.conftest import busybox_layers
from tests.integration.verify.conftest import Images
from tests.integration.verify.test_verify import current, run

ALL = ("n1", "n2", "n3")


def index(tmp_path: Path) -> Path:
    """Variant ``va`` serves n1 and n2, variant ``vb`` serves n3."""
    path = tmp_path / "conda-lock.fleet.toml"
    variants = (
        IndexedVariant("va", "conda-lock.va.yml", "a" * 64, ("n1", "n2")),
        IndexedVariant("vb", "conda-lock.vb.yml", "b" * 64, ("n3",)),
    )
    write_index(path, "fleet", variants)
    return path


def fleet_push(inv: str, idx: Path, env: str, va: Path, vb: Path, *flags: str) -> tuple[int, dict]:
    args = [
        "push",
        "-i",
        inv,
        "--fleet",
        str(idx),
        "--env",
        env,
        "--variant",
        f"va={va}",
        "--variant",
        f"vb={vb}",
    ]
    return run(*args, *flags, schema="envctl.push-fleet/1")


def test_a_refused_node_of_one_variant_stops_every_variant_under_atomic_and_max_fail(
    vf_cluster: SandboxPlan, vf_images: Images, tmp_path: Path
) -> None:
    inv, idx = vf_cluster.inventory, index(tmp_path)
    refused = tmp_path / "refused"  # n3 cannot run it: its glibc is below the image's floor
    write_layout(
        refused, busybox_layers("vf-refused"), ref="r", labels=needs_labels(ImageNeeds("amd64", glibc="9.99"))
    )
    for flags in (["--atomic"], ["--max-fail", "0"]):
        code, doc = fleet_push(inv, idx, "vffleetpre", vf_images.good, refused, *flags)
        assert code == 1 and not doc["ok"] and doc["outcome"] == "none", doc
        assert doc["atomic"] is (flags == ["--atomic"]) and doc["max_fail"] == (0 if "0" in flags else None)
        vb = doc["variants"]["vb"]
        assert vb["nodes"]["n3"]["error"].startswith("preflight: glibc") and vb["preflight"]["refused"]
        for name in ("n1", "n2"):  # never switched: the other variant's node failed
            entry = doc["variants"]["va"]["nodes"][name]
            assert entry["status"] == "skipped", entry
            assert entry["error"].startswith(("not activated: ", "failure budget exceeded")), entry
        assert current(inv, "vffleetpre") == dict.fromkeys(ALL)
    # without a fleet-wide policy the variant that can switch does
    code, doc = fleet_push(inv, idx, "vffleetpre", vf_images.good, refused)
    assert code == 1 and doc["outcome"] == "partial"
    assert current(inv, "vffleetpre") == {
        "n1": doc["variants"]["va"]["digest"],
        "n2": doc["variants"]["va"]["digest"],
        "n3": None,
    }


def test_fleet_verify_and_atomic_switch_every_variant_back(
    vf_cluster: SandboxPlan, vf_images: Images, tmp_path: Path
) -> None:
    inv, idx = vf_cluster.inventory, index(tmp_path)
    other = tmp_path / "other"  # what every node runs before the fleet push
    write_layout(other, busybox_layers("vf-other"), ref="o")
    code, before = run("push", str(other), "-i", inv, "--env", "vffleet")
    assert code == 0
    # vb's image has the broken package: its node fails the check, va's nodes pass
    code, doc = fleet_push(inv, idx, "vffleet", vf_images.good, vf_images.broken, "--verify")
    assert code == 1 and doc["outcome"] == "partial"
    assert doc["variants"]["va"]["verify"]["passed"] == ["n1", "n2"]
    assert doc["variants"]["vb"]["verify"]["failed"] == ["n3"]
    good, broken = doc["variants"]["va"]["digest"], doc["variants"]["vb"]["digest"]
    assert current(inv, "vffleet") == {"n1": good, "n2": good, "n3": broken}

    # under --atomic the failed check on n3 switches the other variant's nodes back as well
    assert run("push", str(other), "-i", inv, "--env", "vffleet")[0] == 0
    code, doc = fleet_push(inv, idx, "vffleet", vf_images.good, vf_images.broken, "--verify", "--atomic")
    assert code == 1 and doc["outcome"] == "none"
    n3 = doc["variants"]["vb"]["nodes"]["n3"]
    assert (
        n3["status"] == "failed" and "brokenpkg" in n3["error"] and "switched back (--atomic)" in n3["error"]
    )
    for name in ("n1", "n2"):
        entry = doc["variants"]["va"]["nodes"][name]
        assert entry["verify"]["passed"] is True  # it passed, and was switched back for n3
        assert entry["error"] == "switched back: a node of another variant failed (--atomic)"
    assert current(inv, "vffleet") == dict.fromkeys(ALL, before["digest"])
