"""The bootstrap script for real, inside fresh Debian roots (bookworm and the older bullseye).

Each root starts as a minimal install without python3 or sudo. The first run installs and makes
everything; the second must change nothing, and say so: asserted from its output and by
comparing every file of the root (mode, owner, size, mtime, ctime, inode) before and after it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.core.bootstrap import (
    EXIT_READY,
    EXIT_WOULD_CHANGE,
    SUMMARY_PREFIX,
    BootstrapOptions,
    parse_summary,
)
from envctl.node.bundle import agent_bundle
from envctl.services.bootstrap.script import render

from .roots import Root, changed_paths, unpack

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv0cmVhbGx5LWEta2V5LWJ1dC13ZWxsLWZvcm1lZA bootstrap-test"
OPTIONS = BootstrapOptions(runtime="prefix", service_user="envctl", authorized_key=KEY)
STORE, PREFIX = "/var/lib/envctl", "/opt/envctl/envs"


@pytest.fixture(params=["bookworm", "bullseye"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Root]:
    fresh = unpack(request.param, tmp_path / "root")
    try:
        yield fresh
    finally:
        fresh.remove()


def summary(done: subprocess.CompletedProcess[str]) -> dict:
    lines = [line for line in done.stdout.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0][len(SUMMARY_PREFIX) :])


def test_fresh_root_bootstrapped_twice_the_second_run_changes_nothing(root: Root) -> None:
    script = render(OPTIONS).text
    agent = f"{STORE}/agent/{agent_bundle().filename}"
    assert root.run("sh", "-c", "command -v python3 || echo none").stdout.strip() == "none"

    check = root.bootstrap(script, "--check")
    assert check.returncode == EXIT_WOULD_CHANGE, check.stdout + check.stderr
    assert summary(check)["changed"] == ["python", "dirs", "agent", "user", "sudo"]
    assert not (root.path / STORE.lstrip("/")).exists(), "--check changed something"

    first = root.bootstrap(script)
    assert first.returncode == EXIT_READY, first.stdout + first.stderr
    assert summary(first)["changed"] == ["python", "dirs", "agent", "user", "sudo"]
    assert first.stdout.splitlines()[-1] == "bootstrap: changed 5: python dirs agent user sudo"

    # what the run made is what envctl uses: python3 runs the pinned agent on the store
    run = parse_summary(first.stdout, first.returncode, root.release)
    assert (
        run.facts["python"]
        == root.run("python3", "-c", "import platform; print(platform.python_version())").stdout.strip()
    )
    for path in (STORE, f"{STORE}/agent", PREFIX):
        st = (root.path / path.lstrip("/")).stat()
        assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o755", 0, 0), path
    assert (root.path / agent.lstrip("/")).read_bytes() == agent_bundle().data
    home = root.run("sh", "-c", "getent passwd envctl | cut -d: -f6").stdout.strip()
    assert (root.path / home.lstrip("/") / ".ssh/authorized_keys").read_text() == KEY + "\n"

    # the sudo rule lets the service user run exactly the agent on this store as root, nothing else
    agent_argv = ["sudo", "-n", "python3", "-S", "-E", agent, "--store", STORE, "--prefix-root", PREFIX]
    as_user = ["runuser", "-u", "envctl", "--"]
    ok = root.run(*as_user, *agent_argv, "state")
    assert (ok.returncode, json.loads(ok.stdout)) == (0, {"envs": {}}), ok.stderr
    other = root.run(*as_user, "sudo", "-n", "python3", "-c", "print(1)")
    assert other.returncode != 0 and "password is required" in other.stderr
    moved = root.run(*as_user, *agent_argv, "--store", "/etc", "state")
    assert json.loads(moved.stdout) == {"error": "--store given twice", "kind": "input"}

    # the host keys printed are the root's own, as ssh-keygen reads them outside
    pub = root.path / "etc/ssh/ssh_host_ed25519_key.pub"
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True)
    keys = [line for line in first.stdout.splitlines() if line.startswith("host key: ")]
    assert len(keys) == 3 and any(fingerprint.stdout.split()[1] in line for line in keys), keys

    before = root.snapshot()
    second = root.bootstrap(script)
    after = root.snapshot()
    assert second.returncode == EXIT_READY, second.stdout + second.stderr
    assert second.stdout.splitlines()[-1] == "bootstrap: nothing to change"
    assert summary(second)["changed"] == []
    assert not [line for line in second.stdout.splitlines() if line.startswith("changed:")]
    assert changed_paths(before, after) == []

    again = root.bootstrap(script, "--check")
    assert (again.returncode, again.stdout.splitlines()[-1]) == (EXIT_READY, "bootstrap: nothing to change")


@pytest.mark.parametrize("root", ["bookworm"], indirect=True)
def test_a_changed_value_is_repaired_and_only_that_is_reported(root: Root) -> None:
    """A node drifts (mode of the prefix root, a damaged agent): the run puts back just those."""
    script = render(BootstrapOptions(runtime="prefix")).text
    assert root.bootstrap(script).returncode == EXIT_READY
    agent = root.path / STORE.lstrip("/") / "agent" / agent_bundle().filename
    agent.write_bytes(b"not the agent")
    (root.path / PREFIX.lstrip("/")).chmod(0o777)
    done = root.bootstrap(script)
    assert done.returncode == EXIT_READY, done.stdout + done.stderr
    assert summary(done)["changed"] == ["dirs", "agent"]
    assert f"changed: set {PREFIX} to root:root 0755 (was root:root 777)" in done.stdout
    assert agent.read_bytes() == agent_bundle().data


# A stand-in for NVIDIA's CLI: this machine has no GPU. It does what the real one does to the
# files the script checks: `runtime configure` adds the runtime to daemon.json, `cdi generate`
# writes a spec that depends on the loaded driver.
FAKE_NVIDIA_CTK = """#!/bin/sh
case "$1 ${2:-}" in
    "--version "*) echo "NVIDIA Container Toolkit CLI version 1.17.0 (test stand-in)" ;;
    "runtime configure") mkdir -p /etc/docker && echo '{"runtimes": {"nvidia": {}}}' >/etc/docker/daemon.json ;;
    "cdi generate") printf 'cdiVersion: 0.5.0\\nkind: nvidia.com/gpu\\n# driver %s\\n' \\
        "$(cat /sys/module/nvidia/version)" >"${3#--output=}" ;;
    *) exit 2 ;;
esac
"""
FAKE_DOCKER = '#!/bin/sh\necho "Docker version 20.10.24 (test stand-in)"\n'


@pytest.mark.parametrize("root", ["bookworm"], indirect=True)
def test_gpu_node_reports_a_missing_driver_then_configures_toolkit_and_cdi_once(root: Root) -> None:
    """Without /sys mounted, the root's own /sys files play the GPU's PCI entry and the driver."""
    script = render(BootstrapOptions(runtime="docker", gpu=True)).text
    bin_dir = root.path / "usr/local/bin"
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    pci = root.path / "sys/bus/pci/devices/0000:41:00.0"
    pci.mkdir(parents=True)
    (pci / "vendor").write_text("0x10de\n")
    (pci / "class").write_text("0x030200\n")

    bare = root.bootstrap(script)
    assert bare.returncode == 3, bare.stdout + bare.stderr  # ready but for what it never installs
    assert summary(bare)["missing"] == ["driver", "toolkit"]
    assert (
        "missing: driver: 1 NVIDIA GPU(s) but no driver loaded; install: nvidia-driver firmware-misc-nonfree"
        in bare.stdout
    )
    assert not (root.path / "etc/cdi").exists()

    (root.path / "sys/module/nvidia").mkdir(parents=True)
    (root.path / "sys/module/nvidia/version").write_text("550.127.05\n")
    (bin_dir / "nvidia-ctk").write_text(FAKE_NVIDIA_CTK)
    (bin_dir / "nvidia-ctk").chmod(0o755)
    done = root.bootstrap(script)
    assert done.returncode == EXIT_READY, done.stdout + done.stderr
    assert summary(done)["changed"] == ["toolkit", "cdi"]
    assert summary(done)["facts"]["driver"] == "550.127.05" and summary(done)["facts"]["gpus"] == "1"
    assert "# driver 550.127.05" in (root.path / "etc/cdi/nvidia.yaml").read_text()

    before = root.snapshot()
    again = root.bootstrap(script)
    assert (again.returncode, again.stdout.splitlines()[-1]) == (EXIT_READY, "bootstrap: nothing to change")
    assert "ok: CDI spec /etc/cdi/nvidia.yaml is current" in again.stdout
    assert changed_paths(before, root.snapshot()) == []

    (root.path / "sys/module/nvidia/version").write_text("560.35.03\n")  # a driver upgrade
    stale = root.bootstrap(script)
    assert summary(stale)["changed"] == ["cdi"], stale.stdout
    assert "# driver 560.35.03" in (root.path / "etc/cdi/nvidia.yaml").read_text()
