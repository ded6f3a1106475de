"""The README's main command: the whole pipeline on a 3-node sandbox (needs root, PyPI, debootstrap)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.network]


def test_demo_runs_the_pipeline_on_three_nodes(tmp_path: Path) -> None:
    for tool in ("ip", "sshd", "debootstrap"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(f"{tool} is missing: bash tests/run.sh installs it")
    if os.geteuid() != 0:
        pytest.fail("the sandbox cluster needs root")
    env = dict(os.environ, COLUMNS="200")
    r = subprocess.run(
        [sys.executable, "-m", "envctl", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    for node in ("n1", "n2", "n3"):
        assert f"ok   {node}: jax " in out, out[-4000:]
    assert "outcome: ok" in out
    assert "removed" in out  # the sandbox came down
