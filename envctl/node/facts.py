"""``facts``: what a node is made of, as raw probe outputs. Standard library only.

The agent only reads: files under /proc, /sys and /etc, a few commands (``nvidia-smi``,
``ldd``, ``systemctl``, ``docker``...) run with ``LC_ALL=C`` and a timeout, and ``statvfs``. It
parses nothing it does not have to: every probe's text goes back as it was, and the client's core
(``envctl.core.facts_parse``) reads it, so a parser fixed on the client needs no new agent. A
probe that is missing or fails is recorded as such (``{"missing": "no nvidia-smi"}``), never an
error of the command.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import subprocess
import sys
import time
from typing import Any

from envctl.node.store import Store

TIMEOUT = 10.0  # seconds per command: a hung nvidia-smi (a GPU fallen off the bus) must not hang doctor
MAX_OUTPUT = 256 << 10  # bytes kept of one probe's output (a /proc/cpuinfo of 256 cores is ~300 KB)
MAX_FILES = 32  # CDI specs, IB devices, environments looked at

#: fields asked of nvidia-smi; compute_cap is refused by R470's nvidia-smi (then asked without it)
GPU_FIELDS = (
    "index,name,uuid,compute_cap,memory.total,mig.mode.current,driver_version,pci.bus_id,persistence_mode"
)
FILES = {
    "proc_driver_version": "/proc/driver/nvidia/version",
    "sys_module_version": "/sys/module/nvidia/version",
    "modules": "/proc/modules",
    "cpuinfo": "/proc/cpuinfo",
    "meminfo": "/proc/meminfo",
    "os_release": "/etc/os-release",
}
UNITS = ("nvidia-persistenced", "nvidia-fabricmanager")


def _env(docker_host: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env["LC_ALL"] = "C"  # lscpu, systemctl and friends translate labels and decimal commas
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def run(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One command's exit status and output, or why it did not run."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            env=env or _env(),
            check=False,
        )
    except FileNotFoundError:
        return {"missing": f"no {argv[0]}"}
    except PermissionError:
        return {"missing": f"{argv[0]} is not executable"}
    except subprocess.TimeoutExpired:
        return {"missing": f"{argv[0]} did not answer within {TIMEOUT:g}s"}
    except OSError as exc:
        return {"missing": f"{argv[0]}: {exc.strerror}"}
    return {
        "rc": proc.returncode,
        "out": proc.stdout[:MAX_OUTPUT].decode("utf-8", "replace"),
        "err": proc.stderr[:MAX_OUTPUT].decode("utf-8", "replace"),
    }


def read(path: str) -> dict[str, Any]:
    """A file's text (cut at MAX_OUTPUT), or why it could not be read."""
    try:
        with open(path, "rb") as fh:
            return {"out": fh.read(MAX_OUTPUT).decode("utf-8", "replace")}
    except FileNotFoundError:
        return {"missing": f"no {path}"}
    except OSError as exc:
        return {"missing": f"{path}: {exc.strerror}"}


def space(path: str) -> dict[str, Any]:
    """Free and total bytes of the file system holding ``path`` (its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and probe != "/":
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe)
    except OSError as exc:
        return {"missing": f"{probe}: {exc.strerror}"}
    return {
        "path": path,
        "measured": probe,
        "free": st.f_bavail * st.f_frsize,
        "total": st.f_blocks * st.f_frsize,
    }


def gpu_probe(env: dict[str, str]) -> dict[str, Any]:
    """``nvidia-smi --query-gpu`` with compute_cap, or without it where the tool refuses the field."""
    argv = ["nvidia-smi", f"--query-gpu={GPU_FIELDS}", "--format=csv,noheader,nounits"]
    first = run(argv, env)
    if first.get("rc") and "compute_cap" in first.get("out", "") + first.get("err", ""):
        fields = GPU_FIELDS.replace(",compute_cap", "")
        second = run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"], env)
        return {**second, "fields": fields, "first": first}
    return {**first, "fields": GPU_FIELDS}


def glob_files(pattern: str) -> dict[str, Any]:
    """The files matching ``pattern`` (at most MAX_FILES), each read."""
    return {path: read(path) for path in sorted(glob.glob(pattern))[:MAX_FILES]}


def infiniband() -> dict[str, Any]:
    """Every RDMA device in sysfs: firmware and, per port, state, link layer and rate."""
    out: dict[str, Any] = {}
    for dev in sorted(glob.glob("/sys/class/infiniband/*"))[:MAX_FILES]:
        ports = {}
        for port in sorted(glob.glob(os.path.join(dev, "ports", "*")))[:MAX_FILES]:
            ports[os.path.basename(port)] = {
                key: read(os.path.join(port, key)).get("out", "").strip()
                for key in ("state", "link_layer", "rate")
            }
        fw = read(os.path.join(dev, "fw_ver")).get("out", "").strip()
        out[os.path.basename(dev)] = {"fw_ver": fw, "ports": ports}
    return out


def nccl(prefix_root: str) -> dict[str, Any]:
    """The NCCL each current environment under ``prefix_root`` carries (wheel or shared library)."""
    found: dict[str, Any] = {}
    for link in sorted(glob.glob(os.path.join(glob.escape(prefix_root), "*")))[:MAX_FILES]:
        if "@" in os.path.basename(link) or not os.path.isdir(link):
            continue  # versions sit beside the env's link; the link is what runs
        root = glob.escape(link)
        hits = glob.glob(os.path.join(root, "lib", "python3*", "site-packages", "nvidia_nccl*.dist-info"))
        hits += glob.glob(os.path.join(root, "lib", "libnccl.so.*"))
        found[os.path.basename(link)] = sorted(os.path.basename(h) for h in hits)[:MAX_FILES]
    return found


def collect(store: str, prefix_root: str, docker_host: str | None = None) -> dict[str, Any]:
    """Every probe, raw. Pure reading: nothing on the node changes."""
    env = _env()
    probes: dict[str, Any] = {name: read(path) for name, path in FILES.items()}
    if "missing" in probes["os_release"]:
        probes["os_release"] = read("/usr/lib/os-release")
    probes["nvidia_smi"] = gpu_probe(env)
    probes["ldd"] = run(["ldd", "--version"], env)
    for unit in UNITS:
        probes[f"unit:{unit}"] = run(
            ["systemctl", "show", "-p", "LoadState,ActiveState,SubState", f"{unit}.service"], env
        )
    probes["nvidia_ctk"] = run(["nvidia-ctk", "--version"], env)
    probes["nvidia_container_cli"] = run(["nvidia-container-cli", "--version"], env)
    engine_env = _env(docker_host)
    probes["docker"] = run(["docker", "version", "--format", "{{.Server.Version}}"], engine_env)
    probes["docker_runtimes"] = run(["docker", "info", "--format", "{{json .Runtimes}}"], engine_env)
    probes["podman"] = run(["podman", "version", "--format", "{{.Version}}"], env)
    probes["cdi"] = {**glob_files("/etc/cdi/*"), **glob_files("/var/run/cdi/*")}
    probes["cuda_compat"] = sorted(glob.glob("/usr/local/cuda*/compat/libcuda.so.*"))[:MAX_FILES]
    probes["cuda_compat_pkg"] = run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "cuda-compat*"], env
    )
    probes["ibv_devinfo"] = run(["ibv_devinfo"], env)
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {
        "probes": probes,
        "glibc": glibc,  # "glibc 2.36": what this Python runs on, without a subprocess
        "machine": platform.machine(),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "cpus": {"online": os.cpu_count(), "usable": usable},
        "store": space(store),
        "prefix_root": space(prefix_root),
        "infiniband": infiniband(),
        "nccl": nccl(prefix_root),
        "agent": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
        "time": time.time(),
    }


def cmd_facts(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """The agent's ``facts`` subcommand."""
    return collect(store.root, args.prefix_root, args.docker_host)
