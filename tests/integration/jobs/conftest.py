"""Real Spark and Ray clusters on sandbox nodes, running jobs in an envctl environment.

Sandbox: prefix ``jb``, 10.252.7.0/28, directory /var/tmp/ect-jb (this area's share of the
machine). n1 is the Spark master and the Ray head; n2 and n3 are the Spark workers; n2 is the
Ray worker. The environment comes from a conda-lock file as conda-lock writes it: the test
channel's conda CPython 3.11 (tests/fixtures/condalock/cl_python.py), numpy and ray as real
wheels from PyPI (cached), and ``envctl-jobprobe``, a wheel made here that nothing else has.
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

from envctl.core.sandbox import SandboxPlan, plan_sandbox
from envctl.services.cluster import sandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
for sub in ("", "jobs", "build", "condalock"):
    sys.path.insert(0, str(FIXTURES / sub))

import jobs_tools  # noqa: E402

PREFIX, SUBNET, DIRECTORY = "jb", "10.252.7.0/28", "/var/tmp/ect-jb"
from jobs_tools import PROBE, PROBE_VERSION  # noqa: E402

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
    plan = plan_sandbox(3, directory=DIRECTORY, prefix=PREFIX, subnet=SUBNET)
    sandbox.down(DIRECTORY)  # a killed earlier run leaves nothing in the way
    start = time.monotonic()
    try:
        yield sandbox.up(plan)
    finally:
        sandbox.down(DIRECTORY)
    print(f"\njobs sandbox: {time.monotonic() - start:.1f}s from up to down")


@pytest.fixture(scope="session")
def jobs_probe_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel that only the envctl environment has: the jobs report its version."""
    import bd_wheels

    source = (
        f'__version__ = "{PROBE_VERSION}"\n'
        "import numpy\n\n"
        "def facts():\n"
        "    import sys\n"
        "    return {'executable': sys.executable, 'prefix': sys.prefix, 'numpy': numpy.__version__,\n"
        "            'numpy_file': numpy.__file__, 'probe': __version__, 'probe_file': __file__}\n"
    )
    directory = tmp_path_factory.mktemp("probe")
    return bd_wheels.make_wheel(directory, PROBE, PROBE_VERSION, {"envctl_jobprobe/__init__.py": source})


@pytest.fixture(scope="session")
def jobs_lock(tmp_path_factory: pytest.TempPathFactory, jobs_probe_wheel: Path) -> Path:
    """conda-lock v1 file: conda CPython 3.11 + numpy, ray (PyPI wheels) + the probe wheel."""
    import cl_locks
    import cl_python

    root = tmp_path_factory.mktemp("joblock")
    try:
        channel = cl_python.build_channel(root / "channel")
        wheels = jobs_tools.env_wheels()
    except (cl_python.MissingTool, jobs_tools.MissingComponent) as exc:
        pytest.fail(str(exc))
    return cl_locks.write_condalock(
        root / "conda-lock.yml", [c.path for c in channel], [*wheels, jobs_probe_wheel], md5_only=()
    )


# ---- TEMPORARY stand-in until envctl push / pack make host-runnable environments ----
@pytest.fixture(scope="session")
def jobs_pushed(jobs_sandbox: SandboxPlan, jobs_probe_wheel: Path) -> str:
    import subprocess

    from jobs_clusters import host_path

    wheels = jobs_tools.env_wheels()
    uv = [sys.executable, "-m", "uv"]
    for node in jobs_sandbox.nodes:
        env = host_path(node, jobs_tools.PUSHED_PYTHON.removesuffix("/bin/python"))
        subprocess.run([*uv, "venv", "-q", "--python", jobs_tools.SYSTEM_PYTHON, str(env)], check=True)
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--offline",
                "--no-index",
                "--python",
                str(env / "bin/python"),
                *map(str, wheels),
                str(jobs_probe_wheel),
            ],
            check=True,
        )
    return jobs_tools.PUSHED_PYTHON


@pytest.fixture(scope="session")
def jobs_packed(tmp_path_factory: pytest.TempPathFactory, jobs_probe_wheel: Path) -> Path:
    import subprocess

    root = tmp_path_factory.mktemp("packed")
    env = root / "env"
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "--python", jobs_tools.SYSTEM_PYTHON, str(env)], check=True)
    wheels = [w for w in jobs_tools.env_wheels() if w.name.startswith("numpy")]
    subprocess.run(
        [
            *uv,
            "pip",
            "install",
            "-q",
            "--offline",
            "--no-index",
            "--python",
            str(env / "bin/python"),
            *map(str, wheels),
            str(jobs_probe_wheel),
        ],
        check=True,
    )
    subprocess.run(["tar", "-C", str(env), "-czf", str(root / "env.tar.gz"), "."], check=True)
    return root / "env.tar.gz"
