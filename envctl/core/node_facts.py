"""NodeFacts: what one node is made of, read from the node agent's raw probe outputs.

Pure. ``node_facts(raw, asked_at, answered_at)`` turns the agent's ``facts`` document into values
with the readers of ``envctl.core.facts_parse``; a probe that is missing becomes a note
(``"no nvidia-smi"``) in ``missing``, never an exception. The document may come from another
agent version or a hostile node: every field is type-checked as it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envctl.core import facts_parse as fp
from envctl.core.facts_parse import GpuFacts, RdmaPort

SCHEMA_FIELDS = ("probes",)  # what a facts document must have


@dataclass(frozen=True)
class Disk:
    """Free space where envctl writes on the node."""

    path: str
    free: int | None
    total: int | None


@dataclass(frozen=True)
class NodeFacts:
    """Every fact doctor holds of a node (None / empty: unknown, with the reason in ``missing``)."""

    driver: str | None = None  # the loaded kernel module's version (else nvidia-smi's)
    driver_userspace: str | None = None  # what nvidia-smi / NVML report
    kernel_module: str | None = None  # "open" | "proprietary"
    gpus: tuple[GpuFacts, ...] = ()
    gpu_error: str | None = None  # nvidia-smi's failure, in words
    modules: frozenset[str] = frozenset()  # of nvidia, nvidia_uvm, nvidia_modeset, nvidia_drm...
    persistenced: str | None = None  # systemd ActiveState, "not-found", or None (no systemd)
    fabricmanager: str | None = None
    cuda_compat: tuple[str, ...] = ()  # compat libcuda files or packages
    runtimes: dict[str, str] = field(default_factory=dict)  # docker/podman -> server version
    docker_runtimes: tuple[str, ...] = ()  # runc, nvidia, ...
    container_toolkit: str | None = None  # nvidia-ctk / nvidia-container-cli version
    cdi_specs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> driver versions in it
    glibc: str | None = None
    arch: str | None = None
    cpu_vendor: str | None = None
    cpu_model: str | None = None
    cpu_flags: tuple[str, ...] = ()  # of avx, avx2, avx512f, amx_tile... (the ones doctor reads)
    cores: int | None = None
    memory: int | None = None  # bytes
    os: str | None = None  # PRETTY_NAME
    os_id: str | None = None  # "debian 12"
    python: str | None = None
    store: Disk | None = None
    prefix_root: Disk | None = None
    clock_skew: float | None = None  # node minus this machine, seconds
    agent: str | None = None  # the bundle the node ran (content address)
    rdma: tuple[RdmaPort, ...] = ()
    nccl: dict[str, str | None] = field(default_factory=dict)  # environment -> NCCL version
    missing: tuple[str, ...] = ()  # probes that gave nothing, and why

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (part of ``envctl.doctor/1``)."""
        return {
            "driver": self.driver,
            "driver_userspace": self.driver_userspace,
            "kernel_module": self.kernel_module,
            "gpus": [g.as_json() for g in self.gpus],
            "gpu_error": self.gpu_error,
            "modules": sorted(self.modules),
            "persistenced": self.persistenced,
            "fabricmanager": self.fabricmanager,
            "cuda_compat": list(self.cuda_compat),
            "runtimes": dict(sorted(self.runtimes.items())),
            "docker_runtimes": list(self.docker_runtimes),
            "container_toolkit": self.container_toolkit,
            "cdi_specs": {k: list(v) for k, v in sorted(self.cdi_specs.items())},
            "glibc": self.glibc,
            "arch": self.arch,
            "cpu_vendor": self.cpu_vendor,
            "cpu_model": self.cpu_model,
            "cpu_flags": list(self.cpu_flags),
            "cores": self.cores,
            "memory": self.memory,
            "os": self.os,
            "os_id": self.os_id,
            "python": self.python,
            "store": None if self.store is None else vars(self.store),
            "prefix_root": None if self.prefix_root is None else vars(self.prefix_root),
            "clock_skew": self.clock_skew,
            "agent": self.agent,
            "rdma": [vars(p) for p in self.rdma],
            "nccl": dict(sorted(self.nccl.items())),
            "missing": list(self.missing),
        }


#: the CPU flags doctor names (TensorFlow wheels need AVX; AMX speeds up bf16 matmuls)
CPU_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
NVIDIA_MODULES = ("nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_drm", "nvidia_peermem")


def _probe(probes: Mapping[str, Any], name: str, missing: list[str]) -> str | None:
    """A probe's stdout when it ran and succeeded; else None with the reason noted."""
    p = probes.get(name)
    if not isinstance(p, dict):
        missing.append(f"{name}: not probed")
        return None
    if isinstance(p.get("missing"), str):
        missing.append(p["missing"])
        return None
    out = p.get("out")
    if not isinstance(out, str):
        return None
    rc = p.get("rc", 0)
    if rc not in (0, None):
        return None
    return out


def _text(p: Any) -> str:
    if not isinstance(p, dict):
        return ""
    return "\n".join(str(p.get(k, "")) for k in ("out", "err") if isinstance(p.get(k), str))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _disk(value: Any, missing: list[str], what: str) -> Disk | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("missing"), str):
        missing.append(f"{what}: {value['missing']}")
        return None
    return Disk(str(value.get("path", "")), _int(value.get("free")), _int(value.get("total")))


def _gpus(probe: Any, missing: list[str]) -> tuple[tuple[GpuFacts, ...], str | None, str | None]:
    """(GPUs, nvidia-smi's error in words, NVML's userspace version from a mismatch error)."""
    if not isinstance(probe, dict):
        return (), None, None
    if isinstance(probe.get("missing"), str):
        missing.append(probe["missing"])
        return (), None, None
    text = _text(probe)
    fields = str(probe.get("fields", "")).split(",")
    if probe.get("rc") == 0:
        rows = fp.parse_gpu_csv(str(probe.get("out", "")), fields)
        if rows is not None:
            return tuple(rows), None, None
    error = fp.smi_error(text) or f"nvidia-smi failed (exit {probe.get('rc')}): {text.strip()[:200]}"
    return (), error, fp.nvml_library_version(text)


def node_facts(
    raw: Mapping[str, Any], asked_at: float | None = None, answered_at: float | None = None
) -> NodeFacts:
    """The facts in one agent ``facts`` document; ``asked_at``/``answered_at`` (this machine's
    clock around the call) give the clock skew."""
    probes = raw.get("probes")
    probes = probes if isinstance(probes, dict) else {}
    missing: list[str] = []

    gpus, gpu_error, nvml = _gpus(probes.get("nvidia_smi"), missing)
    proc = _probe(probes, "proc_driver_version", missing)
    module = fp.parse_proc_driver(proc) if proc else None
    sys_version = _probe(probes, "sys_module_version", missing)
    loaded = (module.version if module else None) or (
        fp.parse_sys_version(sys_version) if sys_version else None
    )
    userspace = next((g.driver for g in gpus if g.driver), None) or nvml

    modules_text = _probe(probes, "modules", missing)
    modules = fp.parse_modules(modules_text) if modules_text else frozenset()

    def unit(name: str) -> str | None:
        text = _probe(probes, f"unit:{name}", [])
        if text is None:
            return None
        show = fp.parse_systemctl_show(text)
        return "not-found" if show.get("LoadState") == "not-found" else show.get("ActiveState")

    runtimes: dict[str, str] = {}
    for engine in ("docker", "podman"):
        out = _probe(probes, engine, [])
        if out and out.strip():
            runtimes[engine] = out.strip().splitlines()[0][:40]
    docker_rt = _probe(probes, "docker_runtimes", [])
    ctk = _probe(probes, "nvidia_ctk", []) or _probe(probes, "nvidia_container_cli", [])

    cdi: dict[str, tuple[str, ...]] = {}
    specs = probes.get("cdi")
    for path, doc in specs.items() if isinstance(specs, dict) else ():
        text = doc.get("out") if isinstance(doc, dict) else None
        if isinstance(text, str) and fp.cdi_kind(text) in ("nvidia.com/gpu", "nvidia.com/mig"):
            cdi[str(path)] = tuple(sorted(fp.cdi_driver_versions(text), key=fp.driver_key))

    compat = [str(f) for f in probes.get("cuda_compat") or () if isinstance(f, str)]
    compat_pkg = _probe(probes, "cuda_compat_pkg", [])
    compat += [line.strip() for line in (compat_pkg or "").splitlines() if line.strip()]

    glibc = fp.parse_confstr_glibc(_str(raw.get("glibc")))
    if glibc is None:
        ldd = _probe(probes, "ldd", missing)
        glibc = fp.parse_ldd_version(ldd) if ldd else None

    cpuinfo_text = _probe(probes, "cpuinfo", missing)
    cpu = fp.parse_cpuinfo(cpuinfo_text) if cpuinfo_text else None
    cpus = _dict(raw.get("cpus"))
    meminfo = _probe(probes, "meminfo", missing)
    release_text = _probe(probes, "os_release", missing)
    release = fp.parse_os_release(release_text) if release_text else {}
    python = _dict(raw.get("python"))

    skew = None
    node_time = raw.get("time")
    if isinstance(node_time, (int, float)) and asked_at is not None and answered_at is not None:
        # the agent reads its clock last: the answer then only travels back (one-way delay)
        skew = round(float(node_time) - answered_at, 3)

    rdma = _rdma(raw, probes)
    nccl_raw = _dict(raw.get("nccl"))
    nccl = {
        str(env): fp.parse_nccl(" ".join(str(f) for f in files)) if isinstance(files, list) else None
        for env, files in nccl_raw.items()
    }
    return NodeFacts(
        driver=loaded or userspace,
        driver_userspace=userspace,
        kernel_module=module.flavor if module else None,
        gpus=gpus,
        gpu_error=gpu_error,
        modules=frozenset(m for m in modules if m in NVIDIA_MODULES or m.startswith("nvidia")),
        persistenced=unit("nvidia-persistenced"),
        fabricmanager=unit("nvidia-fabricmanager"),
        cuda_compat=tuple(compat),
        runtimes=runtimes,
        docker_runtimes=fp.parse_docker_runtimes(docker_rt) if docker_rt else (),
        container_toolkit=fp.parse_ctk_version(ctk) if ctk else None,
        cdi_specs=cdi,
        glibc=glibc,
        arch=_str(raw.get("machine")),
        cpu_vendor=cpu.vendor if cpu else None,
        cpu_model=cpu.model if cpu else None,
        cpu_flags=tuple(f for f in CPU_FLAGS if cpu and f in cpu.flags),
        cores=_int(cpus.get("usable")) or _int(cpus.get("online")) or (cpu.processors if cpu else None),
        memory=fp.parse_meminfo(meminfo) if meminfo else None,
        os=release.get("PRETTY_NAME"),
        os_id=" ".join(v for v in (release.get("ID"), release.get("VERSION_ID")) if v) or None,
        python=_str(python.get("version")),
        store=_disk(raw.get("store"), missing, "store"),
        prefix_root=_disk(raw.get("prefix_root"), missing, "prefix root"),
        clock_skew=skew,
        agent=_str(raw.get("agent")),
        rdma=rdma,
        nccl=nccl,
        missing=tuple(dict.fromkeys(missing)),
    )


def _rdma(raw: Mapping[str, Any], probes: Mapping[str, Any]) -> tuple[RdmaPort, ...]:
    """RDMA ports from sysfs; ``ibv_devinfo`` where sysfs showed none."""
    ports = []
    sysfs = _dict(raw.get("infiniband"))
    for dev, info in sorted(sysfs.items()):
        for port, p in sorted((info.get("ports") or {}).items() if isinstance(info, dict) else ()):
            if isinstance(p, dict) and str(port).isdigit():
                ports.append(
                    RdmaPort(
                        str(dev),
                        int(port),
                        fp.parse_sysfs_ib_state(str(p.get("state", ""))),
                        str(p.get("link_layer", "")),
                    )
                )
    if not ports:
        text = _probe(probes, "ibv_devinfo", [])
        ports = fp.parse_ibv_devinfo(text) if text else []
    return tuple(ports)
