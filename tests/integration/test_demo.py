"""The README's main command: the whole pipeline on a 3-node sandbox (needs root, PyPI, debootstrap)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.network]


def test_demo_runs_the_pipeline_on_three_nodes() -> None:
    for tool in ("ip", "sshd", "debootstrap"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(f"{tool} is missing: bash tests/run.sh installs it")
    if os.geteuid() != 0:
        pytest.fail("the sandbox cluster needs root")
    env = dict(os.environ, COLUMNS="200")
    # Short on purpose: sshd's and dockerd's unix sockets live under the sandbox dir.
    workdir = Path(tempfile.mkdtemp(prefix="ecdemo", dir="/var/tmp"))  # nodes get their own /tmp
    try:
        r = subprocess.run(
            [sys.executable, "-m", "envctl", "demo", "--dir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    for node in ("n1", "n2", "n3"):
        assert f"ok   {node}: jax " in out, out[-4000:]
    assert "outcome: ok" in out
    assert "removed" in out  # the sandbox came down
