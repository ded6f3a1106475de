"""A pushed prefix environment runs from the node's host as a non-root user, and a job on an
older digest keeps its tree across newer pushes until it ends and gc removes it."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from he_run import as_nobody, open_dirs

from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.oci_layout import read_image
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan
from envctl.services.deliver.gc import Freed, gc
from envctl.services.deliver.push import PushOptions, push

pytestmark = pytest.mark.integration

ENV = "jobenv"
PYTHON = f"/opt/envctl/envs/{ENV}/bin/python"
PROBE = r"""
import ctypes, json, os, socket, subprocess, sys, thepkg
child = subprocess.run(
    [sys.executable, "-c", "import sys, thepkg; print(sys.executable, sys.prefix, thepkg.__version__)"],
    capture_output=True, text=True, check=True,
).stdout.split()
with socket.create_connection((sys.argv[1], 22), timeout=5) as s:
    banner = s.recv(64).decode()
print(json.dumps({
    "exe": sys.executable, "prefix": sys.prefix, "version": thepkg.__version__, "child": child,
    "cwd": os.getcwd(), "home": os.path.expanduser("~"), "uid": os.getuid(),
    "cuInit": ctypes.CDLL("libcuda.so.1").cuInit(0), "host_lib": ctypes.CDLL("libcurl.so.4")._name,
    "banner": banner, "file": thepkg.__file__,
}))
"""


@pytest.fixture
def node(he_cluster: SandboxPlan) -> NodeSpec:
    return load_inventory(Path(he_cluster.inventory)).node("n1")


@pytest.fixture
def pool() -> Iterator[SSHPool]:
    with SSHPool(io_timeout=30) as ssh:
        yield ssh


def on_node(pool: SSHPool, spec: NodeSpec, argv: list[str], check: bool = True) -> tuple[int, str, str]:
    transport = pool.connect(spec)
    try:
        r = transport.run(argv, check=check, timeout=120)
        return r.exit_code, r.stdout.decode(), r.stderr.decode()
    finally:
        transport.close()


def tree(he_cluster: SandboxPlan, digest: str) -> Path:
    return Path(he_cluster.nodes[0].path("opt", "envs", f"{ENV}@{digest[7:]}"))  # its /opt/envctl


def test_pushed_env_runs_from_the_host_as_nobody(
    he_cluster: SandboxPlan,
    node: NodeSpec,
    pool: SSHPool,
    he_image: Callable[[str], Path],
    fake_driver: Path,
) -> None:
    image = read_image(he_image("1.0"))
    assert push(image, [node], pool, PushOptions(env=ENV, idle_timeout=30)).outcome == "all"
    mine = Path(he_cluster.nodes[0].path("tmp", "he-host"))  # the node's /tmp/he-host
    open_dirs(mine / "home", mine / "work")
    driver = mine / "driver"
    driver.mkdir(exist_ok=True)
    (driver / "libcuda.so.1").write_bytes((fake_driver / "libcuda.so.1").read_bytes())
    driver.chmod(0o755)
    address = he_cluster.nodes[0].address.split("/")[0]
    argv = as_nobody(
        PYTHON,
        "-c",
        PROBE,
        address,
        home="/tmp/he-host/home",
        cwd="/tmp/he-host/work",
        env={"LD_LIBRARY_PATH": "/tmp/he-host/driver"},
    )
    code, out, err = on_node(pool, node, argv, check=False)
    assert code == 0, err
    doc = json.loads(out)
    view = f"/opt/envctl/envs/{ENV}@{image.manifest.digest[7:]}/.envctl-host"
    # the digest's own path: a job keeps its tree when ENV moves on to a newer push
    assert doc["exe"] == f"{view}/bin/python" and doc["prefix"] == view
    assert doc["child"] == [doc["exe"], view, "1.0"]  # subprocess of sys.executable
    assert doc["version"] == "1.0" and doc["file"].startswith(f"{view}/lib/python3.11/site-packages/")
    assert doc["uid"] == 65534 and doc["cwd"] == "/tmp/he-host/work" and doc["home"] == "/tmp/he-host/home"
    assert doc["cuInit"] == 42  # the host's driver library, from its LD_LIBRARY_PATH
    assert doc["host_lib"] == "libcurl.so.4"  # a host library the image lacks: the host's ld.so.cache
    assert doc["banner"].startswith("SSH-2.0")  # the node's own network
    # every console script of the environment, with its arguments, from another directory
    script = f"/opt/envctl/envs/{ENV}/bin/thepkg-hello"
    code, out, err = on_node(
        pool, node, as_nobody(script, "x", home="/tmp/he-host/home", cwd="/tmp/he-host/home"), check=False
    )
    assert code == 0, err
    assert out.split() == ["hello", "1.0", f"{view}/bin/python", script, "/tmp/he-host/home"]
    # the image's own tree is untouched: chroot into it still runs its venv
    root = f"/opt/envctl/envs/{ENV}@{image.manifest.digest[7:]}"
    code, out, err = on_node(
        pool,
        node,
        ["chroot", root, PYTHON, "-c", "import thepkg, sys; print(thepkg.__version__, sys.prefix)"],
    )
    assert out.split() == ["1.0", f"/opt/envctl/envs/{ENV}"], err


JOB = r"""
import os, subprocess, sys, time, thepkg
work = sys.argv[1]
with open(os.path.join(work, "job.pid"), "w") as fh:
    fh.write(str(os.getpid()))
while not os.path.exists(os.path.join(work, "go")):
    time.sleep(0.1)
child = subprocess.run([sys.executable, "-c", "import thepkg; print(thepkg.__version__)"],
                       capture_output=True, text=True, check=True).stdout.strip()
with open(os.path.join(work, "job.out"), "w") as fh:
    fh.write(" ".join([thepkg.__version__, child, sys.executable]))
"""


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_job_on_an_old_digest_survives_pushes_and_gc_until_it_ends(
    he_cluster: SandboxPlan, node: NodeSpec, pool: SSHPool, he_image: Callable[[str], Path]
) -> None:
    v1, v2, v3 = (read_image(he_image(v)) for v in ("1.0", "2.0", "3.0"))
    options = PushOptions(env=ENV, idle_timeout=30)
    assert push(v1, [node], pool, options).outcome == "all"
    work = Path(he_cluster.nodes[0].path("tmp", "he-job"))
    for leftover in ("job.pid", "job.out", "go"):
        (work / leftover).unlink(missing_ok=True)
    open_dirs(work)
    job = as_nobody(PYTHON, "-c", JOB, "/tmp/he-job", home="/tmp/he-job", cwd="/tmp/he-job")
    on_node(pool, node, ["sh", "-c", f"setsid {shlex.join(job)} >/tmp/he-job/job.log 2>&1 </dev/null &"])
    wait_for(lambda: (work / "job.pid").exists() and (work / "job.pid").read_text() != "", "the job to start")
    pid = int((work / "job.pid").read_text())
    try:
        # two newer pushes: v1 is neither current nor previous any more
        assert push(v2, [node], pool, options).outcome == "all"
        assert push(v3, [node], pool, options).outcome == "all"
        _, out, err = on_node(pool, node, [PYTHON, "-c", "import thepkg; print(thepkg.__version__)"])
        assert out.strip() == "3.0", err
        freed = gc([node], pool, max_age_hours=0).succeeded["n1"]
        assert isinstance(freed, Freed)
        assert freed.in_use_trees == (f"{ENV}@{v1.manifest.digest[7:]}",)
        assert tree(he_cluster, v1.manifest.digest).is_dir()
        (work / "go").write_text("")
        wait_for(lambda: (work / "job.out").exists(), "the job to finish")
        view = f"/opt/envctl/envs/{ENV}@{v1.manifest.digest[7:]}/.envctl-host"
        assert (work / "job.out").read_text().split() == ["1.0", "1.0", f"{view}/bin/python"]
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the job to exit")
    finally:
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, 9)
    freed = gc([node], pool, max_age_hours=0).succeeded["n1"]
    assert isinstance(freed, Freed)
    assert f"{ENV}@{v1.manifest.digest[7:]}" in freed.removed_trees and not freed.in_use_trees
    assert not tree(he_cluster, v1.manifest.digest).exists()
    assert tree(he_cluster, v2.manifest.digest).is_dir()  # previous: kept for a rollback
