"""The README's main command: the whole story on 3 fresh sandbox nodes (needs root, PyPI, debootstrap).

Every step runs with --json inside the demo, so each is checked by what it did, not by its exit
status: the nodes were bootstrapped and probed, the solve took its targets from their facts, the
lock was written, the image built, pushed after a preflight and proven on every node by running,
status agrees with the push, and the demo's own ledger holds each event.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from envctl.services.cluster import sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = [pytest.mark.integration, pytest.mark.network]


def test_demo_runs_the_pipeline_on_three_nodes() -> None:
    for tool in ("ip", "sshd", "debootstrap"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(f"{tool} is missing: bash tests/run.sh installs it")
    if os.geteuid() != 0:
        pytest.fail("the sandbox cluster needs root")
    for stale in Path("/var/tmp").glob("ecdemo*/sandbox"):
        sandbox.down(str(stale))  # a killed earlier run holds the demo's fixed netns names
    env = dict(os.environ, COLUMNS="200")
    # Short on purpose: sshd's and dockerd's unix sockets live under the sandbox dir.
    workdir = Path(tempfile.mkdtemp(prefix="ecdemo", dir="/var/tmp"))  # nodes get their own /tmp
    try:
        r = subprocess.run(
            [sys.executable, "-m", "envctl", "demo", "--dir", str(workdir), "--json"],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
    finally:
        sandbox.down(str(workdir / "sandbox"))  # if the demo was killed, its nodes are still up
        shutil.rmtree(workdir, ignore_errors=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    report = json.loads(r.stdout)
    assert_envelope(report, r.returncode, "envctl.demo/1")
    assert report["failed_step"] is None and report["ok"] and report["seconds"] > 0
    titles = [step["step"] for step in report["steps"]]
    assert titles == [
        "clear an earlier sandbox",
        "sandbox cluster (fresh nodes)",
        "bootstrap the nodes",
        "doctor",
        "solve from the nodes' facts",
        "lock",
        "base image (debootstrap, cached)",
        "build",
        "push (preflight, verify)",
        "status",
        "run on every node",
        "history",
        "sandbox down",
    ]
    for step in report["steps"]:  # each step's own document, checked against the envelope rule
        assert step["exit_code"] == 0 and isinstance(step["result"], dict), step
        assert_envelope(step["result"], step["exit_code"])
    doc = {step["step"]: step["result"] for step in report["steps"]}
    names = ["n1", "n2", "n3"]

    assert [n["name"] for n in doc["sandbox cluster (fresh nodes)"]["nodes"]] == names
    boot = doc["bootstrap the nodes"]["nodes"]
    for name in names:  # fresh nodes: each needed the store and the agent, and got them
        assert boot[name]["status"] == "bootstrapped" and boot[name]["ok"], boot[name]
        assert "agent" in boot[name]["changed"] and boot[name]["left"] == []
    doctor = doc["doctor"]["nodes"]
    for name in names:
        assert doctor[name]["verdict"] in ("ok", "warn") and doctor[name]["cached_at"] is None  # read now
        assert doctor[name]["facts"]["arch"] == "x86_64" and doctor[name]["facts"]["python"].startswith("3.")
    (variant,) = doc["solve from the nodes' facts"]["variants"]
    assert variant["nodes"] == names and [c["name"] for c in variant["classes"]] == ["x86_64-cpu"]
    (locked,) = doc["lock"]["variants"]
    assert locked["nodes"] == names and locked["lock"]["status"] in ("written", "reused")
    assert [p["frameworks"][0].split()[0] for p in locked["lock"]["platforms"]] == ["jax"]
    digest = doc["build"]["image_digest"]
    push = doc["push (preflight, verify)"]
    assert push["digest"] == digest and push["outcome"] == "all"
    assert push["preflight"]["skipped"] is False and push["preflight"]["refused"] == {}
    assert push["verify"] == {"outcome": "all", "passed": names, "failed": [], "not_run": []}
    for name in names:
        check = push["nodes"][name]["verify"]
        assert check["passed"] and check["digest"] == digest and check["packages"] >= 2  # jax, numpy, ...
    for name in names:
        env = doc["status"]["nodes"][name]["envs"]["demo"]
        assert env["current"] == env["actual"] == env["desired"] == digest and env["drift"] is None
        ran = doc["run on every node"]["nodes"][name]
        assert ran["exit_code"] == 0 and ran["stdout"].startswith("jax ") and " on cpu " in ran["stdout"]
    kinds = [e["kind"] for e in doc["history"]["events"]]  # the demo's own ledger, newest first
    assert kinds[0] == "push" and {"build", "lock", "doctor", "bootstrap"} <= set(kinds)
    assert doc["history"]["events"][0]["details"]["verify"]["passed"] == names
    assert doc["sandbox down"]["leftovers"] == [] and doc["sandbox down"]["removed"]
