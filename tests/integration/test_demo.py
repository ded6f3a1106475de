"""The README's main command: the whole pipeline on a 3-node sandbox (needs root, PyPI, debootstrap)."""

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
    assert report["failed_step"] is None
    steps = {step["step"]: step for step in report["steps"]}
    assert report["ok"] and all(step["exit_code"] == 0 for step in report["steps"])
    assert "outcome: all" in steps["push"]["output"]
    for node in ("n1", "n2", "n3"):
        assert f"ok   {node}: jax " in steps["run on every node"]["output"], steps["run on every node"]
    assert "removed" in steps["sandbox down"]["output"]  # the sandbox came down
