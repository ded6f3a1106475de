"""Verdicts on a node's facts: ok / warn / fail, with a fix per finding a platform engineer acts on.

Pure. ``diagnose(facts, matrix, needs)`` holds one node's ``NodeFacts`` against what a node must
offer (a loaded driver that matches its libraries, the modules CUDA uses, a CDI spec generated
for this driver, room in the store...), against the compatibility matrix (the first and last
driver of each GPU) and, when a lock is given, against what it needs (its minimum driver, CPU
architecture, NCCL). A driver too old for the lock gets its ways out from the solver: the newest
release of each locked framework that this driver and these GPUs run. ``across`` adds what only
a group shows (environments whose NCCL differs between nodes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion

from envctl.core.facts_parse import driver_key
from envctl.core.matrix import Dotted, Matrix
from envctl.core.node_facts import NodeFacts
from envctl.core.profile import ARCHES, FrameworkRequest, Profile, Targets

Level = Literal["ok", "warn", "fail"]
_RANK = {"ok": 0, "warn": 1, "fail": 2}
MIN_FREE = 2 << 30  # bytes free in the store below which pushes of a CUDA image stop (warn)
MIN_FREE_FAIL = 256 << 20  # below this not even the agent and a small image fit (fail)
MAX_SKEW = 5.0  # seconds: the ledger, TLS and job logs go wrong past this
#: GPUs sold on NVSwitch boards (HGX/DGX): with 4 or more of them, fabric manager must run
NVSWITCH_GPUS = (
    "A100-SXM",
    "A800-SXM",
    "H100 80GB HBM3",
    "H800",
    "H200",
    "H20",
    "B200",
    "B300",
    "GB200",
    "GB300",
)


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or worth knowing) on a node, and what to do about it."""

    level: Level
    code: str  # stable name for CI: "driver-too-old", "cdi-stale", ...
    message: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape."""
        return {"level": self.level, "code": self.code, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Needs:
    """What a lock asks of a node (from its solution summary); empty: no lock given."""

    source: str = ""  # the lockfile, for messages
    min_driver: str | None = None
    cuda: str | None = None
    frameworks: tuple[tuple[str, str], ...] = ()  # (name, version)
    platforms: tuple[str, ...] = ()  # conda subdirs
    nccl: str | None = None

    @classmethod
    def from_solution(cls, source: str, solution: Mapping[str, Any]) -> Needs:
        """The needs in a lock's ``solution`` summary (``envctl.solution-summary/1``)."""
        fws = solution.get("frameworks") or {}
        pairs = tuple(sorted((str(k), str(v)) for k, v in fws.items())) if isinstance(fws, dict) else ()
        platforms = solution.get("platforms") or ()
        return cls(
            source=source,
            min_driver=str(solution["min_driver"]) if solution.get("min_driver") else None,
            cuda=str(solution["cuda"]) if solution.get("cuda") else None,
            frameworks=pairs,
            platforms=tuple(str(p) for p in platforms) if isinstance(platforms, (list, tuple)) else (),
            nccl=str(solution["nccl"]) if solution.get("nccl") else None,
        )


@dataclass(frozen=True)
class Verdict:
    """A node's verdict: the worst of its findings."""

    facts: NodeFacts
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    cached_at: float | None = None  # when the facts were read (None: just now)

    @property
    def level(self) -> Level:
        """ok, warn or fail."""
        return max((f.level for f in self.findings), key=_RANK.__getitem__, default="ok")

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape of a node's entry in ``envctl.doctor/1``."""
        return {
            "verdict": self.level,
            "findings": [f.as_json() for f in self.findings],
            "facts": self.facts.as_json(),
            "cached_at": self.cached_at,
        }


def diagnose(facts: NodeFacts, matrix: Matrix, needs: Needs | None = None) -> tuple[Finding, ...]:
    """Every finding on one node, worst first."""
    out: list[Finding] = []
    out += _driver(facts)
    out += _gpus_vs_matrix(facts, matrix)
    out += _services(facts)
    out += _containers(facts)
    out += _host(facts)
    if needs is not None:
        out += _lock(facts, matrix, needs)
    return tuple(sorted(out, key=lambda f: -_RANK[f.level]))


def _has_gpu_stack(f: NodeFacts) -> bool:
    return bool(f.gpus or f.gpu_error or f.driver or "nvidia" in f.modules)


def _driver(f: NodeFacts) -> list[Finding]:
    out: list[Finding] = []
    if not _has_gpu_stack(f):
        return out
    if f.gpu_error:
        fixes = {
            "the NVIDIA libraries and the loaded kernel module differ": "reboot the node (or unload and reload the nvidia modules) so that the loaded module matches the installed libraries; hold the driver packages against unattended upgrades",
            "nvidia-smi cannot talk to the NVIDIA driver": "load the driver (modprobe nvidia); if it fails, read dmesg for NVRM lines (nouveau holding the GPU, a module built for another kernel: reinstall the driver's DKMS package)",
            "nvidia-smi found no GPU": "check that the GPUs are on the bus (lspci -d 10de:) and read dmesg for RmInitAdapter errors; reseat or replace the GPU",
            "this nvidia-smi refuses a queried field": "install the nvidia-smi that comes with the loaded driver",
        }
        out.append(
            Finding(
                "fail",
                "gpu-unusable",
                f"nvidia-smi failed: {f.gpu_error}",
                fixes.get(f.gpu_error, "read dmesg for NVRM lines and fix the driver install"),
            )
        )
    if f.driver and f.driver_userspace and driver_key(f.driver) != driver_key(f.driver_userspace):
        out.append(
            Finding(
                "fail",
                "driver-mismatch",
                f"the loaded kernel module is {f.driver} but the NVIDIA libraries are {f.driver_userspace}",
                "reboot the node so that the new kernel module loads (or reinstall the driver whose module is loaded)",
            )
        )
    if f.gpus and "nvidia" not in f.modules and f.modules:
        out.append(
            Finding(
                "fail",
                "module-missing",
                "the nvidia kernel module is not loaded",
                "modprobe nvidia; make it load at boot",
            )
        )
    if f.gpus and "nvidia_uvm" not in f.modules and f.modules:
        out.append(
            Finding(
                "warn",
                "uvm-missing",
                "the nvidia_uvm module is not loaded: CUDA loads it on first use only as root",
                "run `nvidia-modprobe -u -c=0` at boot (or add nvidia_uvm to /etc/modules-load.d)",
            )
        )
    return out


def _gpus_vs_matrix(f: NodeFacts, matrix: Matrix) -> list[Finding]:
    out: list[Finding] = []
    driver = _version(f.driver)
    for gpu in f.gpus:
        known = matrix.find_gpu(gpu.name) or matrix.find_gpu(gpu.name.removeprefix("NVIDIA "))
        cc = gpu.cc or (str(known.cc) if known else None)
        if known is None:
            out.append(
                Finding(
                    "warn",
                    "gpu-unknown",
                    f"GPU {gpu.index} ({gpu.name}, CC {cc or 'unknown'}) is not in the compatibility matrix",
                    "add it to compat_matrix/gpus.toml so that envctl can check its kernels and driver floor",
                )
            )
        if (
            driver is not None
            and known is not None
            and known.min_driver is not None
            and driver < known.min_driver
        ):
            out.append(
                Finding(
                    "fail",
                    "driver-too-old-for-gpu",
                    f"{gpu.name} needs driver >= {known.min_driver}; the node has {f.driver}",
                    f"install the R{known.min_driver.major} driver (>= {known.min_driver}) or newer",
                )
            )
        cc_version = _version(cc)
        info = matrix.cc_info(cc_version) if cc_version is not None else None
        if (
            driver is not None
            and info is not None
            and info.last_driver_branch
            and driver.major > info.last_driver_branch
        ):
            out.append(
                Finding(
                    "fail",
                    "driver-past-gpu",
                    f"{info.family} GPUs (CC {cc}) have no driver after R{info.last_driver_branch}; this node runs {f.driver}",
                    f"install the R{info.last_driver_branch} driver on this node, or retire the {gpu.name}",
                )
            )
        if gpu.mig == "Enabled":
            out.append(
                Finding(
                    "warn",
                    "mig-enabled",
                    f"MIG is enabled on GPU {gpu.index} ({gpu.name}): jobs see MIG instances, not the whole GPU",
                    f"nvidia-smi -i {gpu.index} -mig 0 (then reset the GPU) if whole-GPU jobs run here",
                )
            )
    return out


def _services(f: NodeFacts) -> list[Finding]:
    out: list[Finding] = []
    if not f.gpus:
        return out
    if f.persistenced not in ("active", None) and any(g.persistence == "Disabled" for g in f.gpus):
        out.append(
            Finding(
                "warn",
                "persistence-off",
                "persistence mode is off and nvidia-persistenced is not running: every job start re-initialises the GPUs",
                "systemctl enable --now nvidia-persistenced",
            )
        )
    switched = [g for g in f.gpus if any(n in g.name for n in NVSWITCH_GPUS)]
    if len(switched) >= 4 and f.fabricmanager != "active":
        state = f.fabricmanager or "unknown (no systemd)"
        out.append(
            Finding(
                "fail",
                "fabricmanager-down",
                f"{len(switched)} NVSwitch-board GPUs ({switched[0].name}) but nvidia-fabricmanager is {state}: CUDA fails to initialise",
                f"install nvidia-fabricmanager-{(f.driver or 'DRIVER').split('.')[0]} of the driver's exact version; systemctl enable --now nvidia-fabricmanager",
            )
        )
    return out


def _containers(f: NodeFacts) -> list[Finding]:
    out: list[Finding] = []
    if not f.gpus or not f.runtimes:
        return out
    engines = ", ".join(sorted(f.runtimes))
    if f.container_toolkit is None:
        out.append(
            Finding(
                "warn",
                "toolkit-missing",
                f"{engines} is installed but the NVIDIA container toolkit is not: containers get no GPU",
                "install nvidia-container-toolkit, then `nvidia-ctk runtime configure` and `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`",
            )
        )
    if not f.cdi_specs:
        out.append(
            Finding(
                "warn",
                "cdi-missing",
                "no NVIDIA CDI spec in /etc/cdi or /var/run/cdi",
                "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
            )
        )
    for path, versions in sorted(f.cdi_specs.items()):
        if f.driver and versions and all(driver_key(v) != driver_key(f.driver) for v in versions):
            out.append(
                Finding(
                    "fail",
                    "cdi-stale",
                    f"{path} was generated for driver {', '.join(versions)}; the node runs {f.driver}: containers mount libraries that no longer exist",
                    f"nvidia-ctk cdi generate --output={path} (and run it after every driver upgrade)",
                )
            )
    return out


def _host(f: NodeFacts) -> list[Finding]:
    out: list[Finding] = []
    # cpu_flags holds only the flags doctor names: a CPU with none of them read as "no AVX" too
    if f.arch in ("x86_64", "amd64") and f.cpu_vendor is not None and "avx" not in f.cpu_flags:
        out.append(
            Finding(
                "warn",
                "no-avx",
                "the CPU has no AVX: TensorFlow's wheels do not run here",
                "run TensorFlow jobs on other nodes",
            )
        )
    for name, disk in (("store", f.store), ("prefix root", f.prefix_root)):
        if disk is None or disk.free is None:
            continue
        if disk.free < MIN_FREE:
            level: Level = "fail" if disk.free < MIN_FREE_FAIL else "warn"
            out.append(
                Finding(
                    level,
                    "disk-low",
                    f"only {_size(disk.free)} free under the {name} {disk.path}",
                    f"free space there (`envctl gc -i INV` removes unused versions) or move the {name} to a larger disk",
                )
            )
    if f.clock_skew is not None and abs(f.clock_skew) > MAX_SKEW:
        out.append(
            Finding(
                "warn",
                "clock-skew",
                f"the node's clock is {f.clock_skew:+.1f}s off this machine's",
                "run chrony or systemd-timesyncd against the site's NTP servers",
            )
        )
    for port in f.rdma:
        if port.state != "ACTIVE":
            layer = "RoCE" if port.link_layer == "Ethernet" else port.link_layer
            out.append(
                Finding(
                    "warn",
                    "rdma-down",
                    f"{layer} port {port.device}/{port.port} is {port.state}: NCCL falls back to TCP or hangs",
                    f"check the cable and switch port of {port.device} (ibstat {port.device})",
                )
            )
    return out


def _lock(f: NodeFacts, matrix: Matrix, needs: Needs) -> list[Finding]:
    out: list[Finding] = []
    platform = ARCHES.get(f.arch or "")
    if needs.platforms and platform and platform not in needs.platforms:
        out.append(
            Finding(
                "fail",
                "arch-not-locked",
                f"{needs.source} is locked for {', '.join(needs.platforms)}; this node is {f.arch} ({platform})",
                f"lock for both: envctl lock PROFILE --platform {platform} (with the other platforms)",
            )
        )
    floor = _version(needs.min_driver)
    if floor is not None and needs.cuda:
        driver = _version(f.driver)
        if not f.gpus and driver is None:
            out.append(
                Finding(
                    "fail",
                    "no-gpu",
                    f"{needs.source} needs CUDA {needs.cuda} (driver >= {needs.min_driver}); this node has no NVIDIA GPU",
                    "push a CPU lock to this node, or leave it out (--limit)",
                )
            )
        elif driver is not None and driver < floor:
            ways = [f"install the R{floor.major} driver (>= {needs.min_driver}) or newer"]
            older = driver_ways_out(f, matrix, needs)
            if older:
                ways.append(f"use {older}")
            out.append(
                Finding(
                    "fail",
                    "driver-too-old",
                    f"driver {f.driver} is older than this image's minimum {needs.min_driver}",
                    ", or ".join(ways),
                )
            )
    if needs.nccl:
        for env, version in sorted(f.nccl.items()):
            if version and version != needs.nccl:
                out.append(
                    Finding(
                        "warn",
                        "nccl-differs",
                        f"environment {env} here has NCCL {version}; {needs.source} has {needs.nccl}",
                        f"push {needs.source}'s image to this node so that every node runs NCCL {needs.nccl}",
                    )
                )
    return out


def driver_ways_out(f: NodeFacts, matrix: Matrix, needs: Needs) -> str | None:
    """The newest releases of the locked frameworks that this node's driver and GPUs run, as
    the solver finds them ("torch 2.7.1 (cu118)"); None when none does."""
    from envctl.core.constraints import make_problem
    from envctl.core.solver import Found, search
    from envctl.errors import EnvctlError

    driver = _version(f.driver)
    if driver is None or not needs.frameworks:
        return None
    ccs = sorted({g.cc for g in f.gpus if g.cc})
    platform = ARCHES.get(f.arch or "", "linux-64")
    profile = Profile(
        name="doctor",
        frameworks=tuple(
            FrameworkRequest(name, SpecifierSet(), key=f"frameworks.{name}") for name, _ in needs.frameworks
        ),
        targets=Targets(platforms=(platform,), gpus=tuple(f"cc:{cc}" for cc in ccs), driver=driver),
        path="<doctor>",
    )
    try:
        found = search(make_problem(profile, matrix), matrix, limit=2000)
    except EnvctlError:
        return None  # a framework or GPU the matrix does not know: nothing to suggest
    if not isinstance(found, Found):
        return None
    builds = found.builds.get(platform, ())
    parts = []
    for (fw, version), build in zip(found.versions, builds, strict=False):
        parts.append(f"{fw.name} {version} ({build.variant})")
    cuda = f" with CUDA {found.cuda.version}" if found.cuda else ""
    return " + ".join(parts) + cuda if parts else None


def across(
    verdicts: Mapping[str, Sequence[Finding]], facts: Mapping[str, NodeFacts]
) -> dict[str, list[Finding]]:
    """Findings only a group shows: an environment whose NCCL differs between nodes (multi-node
    jobs need every node to agree)."""
    extra: dict[str, list[Finding]] = {name: [] for name in verdicts}
    envs: dict[str, dict[str, str]] = {}
    for name, f in facts.items():
        for env, version in f.nccl.items():
            if version:
                envs.setdefault(env, {})[name] = version
    for env, by_node in sorted(envs.items()):
        versions = sorted(set(by_node.values()), key=driver_key)
        if len(versions) < 2:
            continue
        newest = versions[-1]
        for name, version in by_node.items():
            if version != newest:
                extra[name].append(
                    Finding(
                        "warn",
                        "nccl-disagrees",
                        f"environment {env} has NCCL {version} here and {newest} on other nodes: multi-node jobs hang or fail",
                        f"push the same image of {env} to every node",
                    )
                )
    return extra


def _version(text: str | None) -> Dotted | None:
    if not text:
        return None
    try:
        return Dotted(text)
    except InvalidVersion:
        return None


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
