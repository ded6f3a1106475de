"""Readers of what the node agent's probes print: nvidia-smi, /proc, /sys, ldd, os-release, CDI specs.

Pure: text in, values out. Every reader was written against outputs captured on real machines
(tests/fixtures/gpu, each with its origin) and follows what those showed: nvidia-smi cells are
separated by ``", "`` and an unknown value is any ``[...]`` cell or ``N/A``; driver versions keep
their zeros and compare as numbers (``570.133.07`` == ``570.133.7``); the /proc line of an open
kernel module has ``for x86_64`` before the version; a build date may be in any locale, so it is
never read. A reader given something else returns None or an empty value; it never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

DRIVER = re.compile(r"\d+\.\d+(?:\.\d+)?")
_CC = re.compile(r"\d+\.\d+")
_UUID = re.compile(r"(?:GPU|MIG)-[0-9a-fA-F-]+")
_UNIT = re.compile(r"\s*\[[^\]]*\]$")
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*[A-Za-z%]+")
MAX_ROWS = 64  # GPUs on one node (16 is the most any board has); more rows is not nvidia-smi


@dataclass(frozen=True)
class GpuFacts:
    """One physical GPU as nvidia-smi reports it (None: the field is unknown on this node)."""

    index: int | None
    name: str
    uuid: str | None
    cc: str | None  # "9.0"
    memory_mib: int | None
    mig: str | None  # "Enabled" | "Disabled" | None (not MIG-capable or not asked)
    driver: str | None
    bus_id: str | None
    persistence: str | None

    def as_json(self) -> dict[str, object]:
        """Stable JSON shape."""
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "cc": self.cc,
            "memory_mib": self.memory_mib,
            "mig": self.mig,
            "driver": self.driver,
            "bus_id": self.bus_id,
            "persistence": self.persistence,
        }


def unknown(cell: str) -> bool:
    """Whether an nvidia-smi cell says "no value" (``[N/A]``, ``N/A``, ``[Not Supported]``, empty...)."""
    text = cell.strip()
    return not text or text == "N/A" or (text.startswith("[") and text.endswith("]"))


def _cell(row: dict[str, str], key: str) -> str | None:
    value = row.get(key)
    return None if value is None or unknown(value) else value.strip()


def driver_key(version: str) -> tuple[int, ...]:
    """A driver version as numbers: 570.133.07 and 570.133.7 are the same driver."""
    return tuple(int(p) for p in version.split("."))


def parse_gpu_csv(text: str, fields: Sequence[str] | None = None) -> list[GpuFacts] | None:
    """The rows of ``nvidia-smi --query-gpu=FIELDS --format=csv[,noheader][,nounits]``.

    ``fields`` are the names asked for (noheader); None: the first line is the header (units in
    brackets are dropped). None when the text is not such a table (an error message instead)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if fields is None:
        if not lines:
            return None
        fields = [_UNIT.sub("", f.strip()) for f in lines[0].split(",")]
        lines = lines[1:]
    names = [f.strip() for f in fields]
    gpus = []
    for line in lines[:MAX_ROWS]:
        cells = [c.strip() for c in line.split(", ")]
        if len(cells) != len(names):
            return None  # an error line, or a value with ", " in it: trust nothing of it
        row = dict(zip(names, cells, strict=True))
        name = _cell(row, "name")
        if name is None:
            return None
        uuid, cc, driver = _cell(row, "uuid"), _cell(row, "compute_cap"), _cell(row, "driver_version")
        driver = driver or _cell(row, "kmd_version")  # R610 renames driver_version
        memory = _cell(row, "memory.total")
        if memory is not None and (m := _NUMBER_UNIT.fullmatch(memory)):
            memory = m.group(1)  # "143771 MiB" without nounits
        index = _cell(row, "index")
        gpus.append(
            GpuFacts(
                index=int(index) if index and index.isdigit() else None,
                name=name,
                uuid=uuid if uuid and _UUID.fullmatch(uuid) else None,
                cc=cc if cc and _CC.fullmatch(cc) else None,
                memory_mib=int(float(memory)) if memory and re.fullmatch(r"\d+(\.\d+)?", memory) else None,
                mig=_cell(row, "mig.mode.current"),
                driver=driver if driver and DRIVER.fullmatch(driver) else None,
                bus_id=_bus_id(_cell(row, "pci.bus_id")),
                persistence=_cell(row, "persistence_mode"),
            )
        )
    return gpus if gpus else None


def _bus_id(value: str | None) -> str | None:
    """``00000000:0C:00.0`` -> ``0000:0c:00.0`` (the sysfs spelling)."""
    if value is None:
        return None
    m = re.fullmatch(r"([0-9A-Fa-f]{4,8}):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})\.([0-7])", value)
    if not m:
        return None
    domain = m.group(1).lower()
    domain = domain[-4:] if domain[:-4].strip("0") == "" else domain
    return f"{domain}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"


#: what nvidia-smi prints when it cannot answer, as a finding names it
SMI_ERRORS = (
    ("couldn't communicate with the NVIDIA driver", "nvidia-smi cannot talk to the NVIDIA driver"),
    ("communicate with the NVIDIA driver", "nvidia-smi cannot talk to the NVIDIA driver"),
    ("Driver/library version mismatch", "the NVIDIA libraries and the loaded kernel module differ"),
    ("No devices were found", "nvidia-smi found no GPU"),
    ("Unable to determine the device handle", "nvidia-smi cannot open a GPU (device handle)"),
    ("Failed to initialize NVML: Unknown Error", "NVML failed to initialize (Unknown Error)"),
    ("is not a valid field to query", "this nvidia-smi refuses a queried field"),
)


def smi_error(text: str) -> str | None:
    """What an nvidia-smi failure says, in a few words (None: not a failure this reader knows)."""
    for needle, meaning in SMI_ERRORS:
        if needle in text:
            return meaning
    return None


def nvml_library_version(text: str) -> str | None:
    """``NVML library version: 550.144`` from a mismatch error (the userspace side)."""
    m = re.search(r"NVML library version:\s*(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


@dataclass(frozen=True)
class KernelModule:
    """The loaded NVIDIA kernel module, from /proc/driver/nvidia/version."""

    version: str  # "565.57.01" (L4T: the L4T release, "35.3.1")
    flavor: str  # "open" | "proprietary"
    arch: str | None  # "x86_64", "aarch64"


def parse_proc_driver(text: str) -> KernelModule | None:
    """The ``NVRM version:`` line: the first number after ``Module`` (and ``for ARCH``)."""
    for line in text.splitlines():
        if not line.startswith("NVRM version:"):
            continue
        words = line.split()
        if "Module" not in words:
            return None
        rest = words[words.index("Module") + 1 :]
        arch = None
        if len(rest) >= 2 and rest[0] == "for":
            arch, rest = rest[1], rest[2:]
        elif "UNIX" in words and words.index("UNIX") + 1 < len(words):
            candidate = words[words.index("UNIX") + 1]
            arch = candidate if candidate not in ("Open", "Kernel") else None
        for word in rest:
            if DRIVER.fullmatch(word):
                return KernelModule(word, "open" if "Open" in words else "proprietary", arch)
        return None
    return None


def parse_sys_version(text: str) -> str | None:
    """/sys/module/nvidia/version: the bare version of the loaded module."""
    value = text.strip()
    return value if DRIVER.fullmatch(value) else None


def parse_modules(text: str) -> frozenset[str]:
    """Loaded module names from /proc/modules or ``lsmod`` (its header line is skipped)."""
    names = set()
    for line in text.splitlines():
        words = line.split()
        if words and words[0] != "Module" and re.fullmatch(r"[A-Za-z0-9_]+", words[0]):
            names.add(words[0])
    return frozenset(names)


def parse_ldd_version(text: str) -> str | None:
    """glibc from ``ldd --version``'s first line: ``ldd (Debian GLIBC 2.36-9+deb12u14) 2.36``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"(\d+\.\d+)\s*$", first)
    return m.group(1) if m and "ldd" in first.lower() else None


def parse_confstr_glibc(text: str | None) -> str | None:
    """glibc from ``os.confstr('CS_GNU_LIBC_VERSION')``: ``glibc 2.36``."""
    m = re.fullmatch(r"glibc (\d+\.\d+)", (text or "").strip())
    return m.group(1) if m else None


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says of the CPU (x86: vendor, model, flags; aarch64: implementer, part)."""

    vendor: str | None  # GenuineIntel | AuthenticAMD | ARM (0x41) | ...
    model: str | None
    processors: int
    flags: frozenset[str]


_IMPLEMENTERS = {"0x41": "ARM", "0xc0": "Ampere", "0x48": "HiSilicon", "0x4e": "NVIDIA", "0x61": "Apple"}
_ARM_PARTS = {"0xd4f": "Neoverse-V2", "0xd49": "Neoverse-N2", "0xd40": "Neoverse-V1", "0xd0c": "Neoverse-N1"}


def parse_cpuinfo(text: str) -> CpuInfo:
    """/proc/cpuinfo: split each line on its first ``:`` (tabs in the kernel's file, spaces in copies)."""
    first: dict[str, str] = {}
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            processors += 1
        first.setdefault(key, value)
    flags = frozenset((first.get("flags") or first.get("features") or "").split())
    vendor = first.get("vendor_id")
    model = first.get("model name")
    if vendor is None and "cpu implementer" in first:
        vendor = _IMPLEMENTERS.get(first["cpu implementer"].lower(), first["cpu implementer"])
        model = model or _ARM_PARTS.get(first.get("cpu part", "").lower(), first.get("cpu part"))
    return CpuInfo(vendor, model, processors, flags)


def parse_meminfo(text: str) -> int | None:
    """MemTotal in bytes."""
    m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else None


def parse_os_release(text: str) -> dict[str, str]:
    """os-release's ``KEY=value`` lines, quotes removed."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_]+", key):
            out[key] = value.strip().strip('"').strip("'")
    return out


def parse_systemctl_show(text: str) -> dict[str, str]:
    """``systemctl show -p LoadState,ActiveState,SubState UNIT``: ``{"LoadState": "loaded", ...}``."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and re.fullmatch(r"[A-Za-z]+", key):
            out[key] = value
    return out


def parse_ctk_version(text: str) -> str | None:
    """``NVIDIA Container Toolkit CLI version 1.12.0`` (or the runtime's / cli's ``version 1.11.0``)."""
    m = re.search(r"version[:\s]+(\d+\.\d+\.\d+)", text)
    return m.group(1) if m else None


def parse_docker_runtimes(text: str) -> tuple[str, ...]:
    """Runtime names from ``docker info --format '{{json .Runtimes}}'``."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # a node's output: nested too deeply is no runtimes
        return ()
    return tuple(sorted(doc)) if isinstance(doc, dict) else ()


_CDI_VERSIONS = (
    re.compile(r"--host-driver-version=(\d+\.\d+(?:\.\d+)?)"),
    re.compile(r"/firmware/nvidia/(\d+\.\d+(?:\.\d+)?)/"),
    # NVIDIA's libraries carry the driver's version (libcuda.so.570.133.20); others (libEGL.so.1.1.0)
    # do not look like a driver: three-digit branch
    re.compile(r"/lib[\w.+-]*\.so\.(\d{3}\.\d+(?:\.\d+)?)\b"),
)


def cdi_driver_versions(text: str) -> frozenset[str]:
    """The driver versions a CDI spec (YAML or JSON) was generated for: its library names,
    firmware directory and cuda-compat hook carry them."""
    found: set[str] = set()
    for pattern in _CDI_VERSIONS:
        found.update(pattern.findall(text))
    return frozenset(found)


def cdi_kind(text: str) -> str | None:
    """The spec's ``kind`` (``nvidia.com/gpu``)."""
    m = re.search(r"""["']?kind["']?\s*:\s*["']?([\w.\-/]+)""", text)
    return m.group(1) if m else None


@dataclass(frozen=True)
class RdmaPort:
    """One port of an InfiniBand / RoCE adapter."""

    device: str
    port: int
    state: str  # "ACTIVE", "DOWN", ...
    link_layer: str  # "InfiniBand" | "Ethernet" (RoCE)


def parse_ibv_devinfo(text: str) -> list[RdmaPort]:
    """Ports from ``ibv_devinfo`` (tabs or pasted spaces)."""
    out: list[RdmaPort] = []
    device, port, state = None, None, None
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        value = value.strip()
        if key == "hca_id":
            device, port, state = value, None, None
        elif key == "port" and value.isdigit():
            port, state = int(value), None
        elif key == "state":
            state = value.split()[0].removeprefix("PORT_") if value else None
        elif key == "link_layer" and device and port is not None:
            out.append(RdmaPort(device, port, state or "UNKNOWN", value))
    return out


def parse_sysfs_ib_state(text: str) -> str:
    """/sys/class/infiniband/DEV/ports/N/state: ``4: ACTIVE`` -> ``ACTIVE``."""
    return text.partition(":")[2].strip() or text.strip()


_NCCL_LINE = re.compile(r"NCCL version (\d+\.\d+\.\d+)")
_NCCL_FILE = re.compile(
    r"(?:nvidia_nccl_cu\d+-(\d+\.\d+\.\d+)[.\w]*\.dist-info|libnccl\.so\.(\d+\.\d+\.\d+))"
)


def parse_nccl(text: str) -> str | None:
    """The NCCL version from an ``NCCL_DEBUG=INFO`` log line or a wheel / library file name."""
    m = _NCCL_LINE.search(text)
    if m:
        return m.group(1)
    f = _NCCL_FILE.search(text)
    return (f.group(1) or f.group(2)) if f else None
