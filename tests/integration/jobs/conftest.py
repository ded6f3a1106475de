"""Real Spark and Ray clusters on sandbox nodes, running jobs in an envctl environment.

Sandbox: prefix ``jb``, 10.252.7.0/28, directory /var/tmp/ect-jb (this area's share of the
machine). n1 is the Spark master and the Ray head; n2 and n3 are the Spark workers; n2 is the
Ray worker. The environment is built by ``envctl build`` from a lock of
numpy and ray (real wheels from PyPI, cached) and ``envctl-jobprobe``, a wheel made here that
nothing else has, on the Debian base's CPython 3.11; then ``envctl push`` / ``envctl pack``.
A missing component (root, Java, PyPI on a cold cache) FAILS the tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.core.sandbox import SandboxPlan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
for sub in ("", "jobs", "build", "condalock"):
    sys.path.insert(0, str(FIXTURES / sub))

import jobs_env  # noqa: E402
import jobs_tools  # noqa: E402
from sandbox_nodes import running_sandbox  # noqa: E402

PREFIX, SUBNET, DIRECTORY = "jb", "10.252.7.0/28", "/var/tmp/ect-jb"

TOOLS = ("ip", "sshd", "ssh-keygen", "nsenter", "unshare")


def _fail_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("job tests need root (network namespaces)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install openssh-server iproute2")


@pytest.fixture(scope="session")
def jobs_tools_venv() -> Path:
    """pyspark, ray and numpy for the daemons and drivers (the cluster's own install)."""
    try:
        jobs_tools.java_home()
        return jobs_tools.tools_venv()
    except jobs_tools.MissingComponent as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def jobs_sandbox() -> Iterator[SandboxPlan]:
    """Three sshd nodes (prefix runtime); always taken down, also when a test fails."""
    _fail_unless_root()
    start = time.monotonic()
    with running_sandbox(PREFIX, 3, SUBNET, directory=DIRECTORY) as plan:
        yield plan
    print(f"\njobs sandbox: {time.monotonic() - start:.1f}s from up to down")


@pytest.fixture(scope="session")
def jobs_lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numpy, ray (PyPI wheels, cached) and the probe wheel on the Debian base's CPython 3.11."""
    root = tmp_path_factory.mktemp("joblock")
    try:
        return jobs_env.write_lock(root / "conda-lock.yml", [jobs_env.probe_wheel(root / "wheels")])
    except jobs_tools.MissingComponent as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def jobs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """envctl's download and layer cache for this session (the bases stay in the shared one)."""
    return tmp_path_factory.mktemp("envctl-cache")


@pytest.fixture(scope="session")
def jobs_image(jobs_lock: Path, jobs_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``envctl build`` of the lock: an OCI layout."""
    from envctl.adapters.blob_cache import default_cache_root

    out = tmp_path_factory.mktemp("jobimage") / "image"
    start = time.monotonic()
    jobs_env.base_layout(default_cache_root())
    jobs_env.build(jobs_lock, out, jobs_cache, base_cache=default_cache_root())
    print(f"\njobs image built in {time.monotonic() - start:.1f}s")
    return out


@pytest.fixture(scope="session")
def jobs_pushed(jobs_sandbox: SandboxPlan, jobs_image: Path) -> str:
    """``envctl push`` of the image to every node; the interpreter's path there."""
    start = time.monotonic()
    result = jobs_env.push(jobs_image, jobs_sandbox.inventory, "sandbox")
    assert result["ok"] is True, result
    print(f"\njobs image pushed to {len(jobs_sandbox.nodes)} nodes in {time.monotonic() - start:.1f}s")
    return jobs_tools.PUSHED_PYTHON


@pytest.fixture(scope="session")
def jobs_packed(jobs_image: Path, jobs_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``envctl pack`` of the image: env.tar.gz."""
    out = tmp_path_factory.mktemp("packed") / "env.tar.gz"
    start = time.monotonic()
    jobs_env.pack(jobs_image, out, jobs_cache)
    print(f"\njobs environment packed in {time.monotonic() - start:.1f}s ({out.stat().st_size / 1e6:.0f} MB)")
    return out
