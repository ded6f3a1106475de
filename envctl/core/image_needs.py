"""What an image needs of the node that runs it, recorded in its config, and who cannot give it.

Pure. At build, ``needs_of`` reads the lock (its CUDA and minimum driver, the manylinux / conda
``__glibc`` floor of its files, TensorFlow's AVX) and the compatibility matrix (the GPU
architectures and PTX of the locked framework builds); ``needs_labels`` writes them as config
labels (``dev.envctl.needs.*``, strings, so the config stays canonical and reproducible). At push,
``read_needs`` reads them back from the config and ``refusals`` holds one node's facts against
them: every reason the node cannot run the image, each with a fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from envctl.core.doctor import Finding
from envctl.core.lock import LockedEnv
from envctl.core.matrix import Matrix
from envctl.core.node_facts import NodeFacts

PREFIX = "dev.envctl.needs."
#: OCI architecture -> what ``uname -m`` says on such a node
UNAME = {"amd64": ("x86_64",), "arm64": ("aarch64", "arm64")}
#: legacy manylinux tags and the glibc they stand for (PEP 600)
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_")


@dataclass(frozen=True)
class ImageNeeds:
    """What a node must offer to run an image (None / empty: nothing asked)."""

    arch: str  # OCI architecture: amd64, arm64
    cuda: str | None = None
    min_driver: str | None = None
    gpu_archs: tuple[str, ...] = ()  # compute capabilities with SASS: "8.0", "9.0"
    ptx: tuple[str, ...] = ()  # compute capabilities with PTX (JIT for newer GPUs)
    glibc: str | None = None  # the highest floor of any file in the image
    cpu_flags: tuple[str, ...] = ()  # /proc/cpuinfo flags the code needs ("avx")
    unpacked: int = 0  # bytes the environment takes once unpacked


def glibc_floor(filename: str) -> tuple[int, int] | None:
    """The glibc a wheel needs, from its manylinux tags (the lowest of a compressed tag set)."""
    if not filename.endswith(".whl"):
        return None
    platform = filename[:-4].rsplit("-", 1)[-1]
    floors = []
    for tag in platform.split("."):
        if m := _MANYLINUX.match(tag + "_"):
            floors.append((int(m.group(1)), int(m.group(2))))
        elif (legacy := tag.split("_", 1)[0]) in _LEGACY:
            floors.append(_LEGACY[legacy])
    return min(floors) if floors else None


def _conda_glibc(deps: Iterable[tuple[str, str]]) -> tuple[int, int] | None:
    for name, spec in deps:
        if name == "__glibc" and (m := re.search(r">=\s*(\d+)\.(\d+)", spec)):
            return int(m.group(1)), int(m.group(2))
    return None


def needs_of(env: LockedEnv, matrix: Matrix | None, architecture: str, unpacked: int) -> ImageNeeds:
    """The needs of an image built from ``env`` for ``architecture``, ``unpacked`` bytes big."""
    floors = [f for e in env.files if (f := glibc_floor(e.filename) or _conda_glibc(e.dependencies))]
    glibc = "{}.{}".format(*max(floors)) if floors else None
    min_driver = env.min_driver
    archs: set[Version] = set()
    ptx: set[Version] = set()
    if env.cuda and matrix is not None:
        cuda = Version(env.cuda)
        if min_driver is None and (tk := matrix.toolkit(cuda)) is not None:
            min_driver = str(matrix.native_floor(tk))
        for pin in env.frameworks:
            name, _, version = pin.partition("==")
            fw = matrix.framework(name)
            if fw is None:
                continue
            for b in fw.builds_of(Version(version)):
                if b.is_cuda and b.cuda is not None and env.platform in b.platforms and cuda in b.cuda:
                    archs.update(b.archs)
                    ptx.update(b.ptx)
    names = {pin.partition("==")[0] for pin in env.frameworks}
    flags = ("avx",) if "tensorflow" in names and architecture == "amd64" else ()
    return ImageNeeds(
        arch=architecture,
        cuda=env.cuda,
        min_driver=min_driver,
        gpu_archs=tuple(str(a) for a in sorted(archs)),
        ptx=tuple(str(p) for p in sorted(ptx)),
        glibc=glibc,
        cpu_flags=flags,
        unpacked=unpacked,
    )


def needs_labels(needs: ImageNeeds) -> dict[str, str]:
    """The config labels that record ``needs`` (the architecture is the config's own field)."""
    return {
        f"{PREFIX}cuda": needs.cuda or "none",
        f"{PREFIX}min_driver": needs.min_driver or "none",
        f"{PREFIX}gpu_archs": ",".join(needs.gpu_archs),
        f"{PREFIX}ptx": ",".join(needs.ptx),
        f"{PREFIX}glibc": needs.glibc or "none",
        f"{PREFIX}cpu_flags": ",".join(needs.cpu_flags),
        f"{PREFIX}unpacked": str(needs.unpacked),
    }


def read_needs(config: Mapping[str, Any]) -> ImageNeeds | None:
    """The needs an image config records; None when it records none (not built by envctl)."""
    labels = (config.get("config") or {}).get("Labels") or {}
    if not isinstance(labels, Mapping) or f"{PREFIX}unpacked" not in labels:
        return None

    def text(key: str) -> str | None:
        value = labels.get(PREFIX + key)
        return None if not isinstance(value, str) or value in ("", "none") else value

    def items(key: str) -> tuple[str, ...]:
        return tuple(v for v in (text(key) or "").split(",") if v)

    size = text("unpacked") or "0"
    return ImageNeeds(
        arch=str(config.get("architecture") or "amd64"),
        cuda=text("cuda"),
        min_driver=text("min_driver"),
        gpu_archs=items("gpu_archs"),
        ptx=items("ptx"),
        glibc=text("glibc"),
        cpu_flags=items("cpu_flags"),
        unpacked=int(size) if size.isdigit() else 0,
    )


def _v(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def refusals(needs: ImageNeeds, f: NodeFacts) -> tuple[Finding, ...]:
    """Every reason the node of ``f`` cannot run an image of ``needs`` (empty: it can)."""
    out: list[Finding] = []
    want = UNAME.get(needs.arch, (needs.arch,))
    if f.arch and f.arch not in want:
        out.append(
            Finding(
                "fail",
                "arch",
                f"the image is linux/{needs.arch}; this node is {f.arch}",
                f"build the image for this node (envctl build --platform linux/{'arm64' if f.arch in ('aarch64', 'arm64') else 'amd64'}) or leave the node out (--limit)",
            )
        )
    floor, have = _v(needs.glibc), _v(f.glibc)
    if floor is not None and have is not None and have < floor:
        out.append(
            Finding(
                "fail",
                "glibc",
                f"glibc {f.glibc} is older than this image's {needs.glibc} floor",
                f'upgrade the node\'s OS (a release with glibc >= {needs.glibc}), or lock for it (targets.glibc = "{f.glibc}" in the profile)',
            )
        )
    # flags are only held against a CPU that was read (an unread cpuinfo proves nothing)
    lacking = [flag for flag in needs.cpu_flags if flag not in f.cpu_flags]
    if lacking and f.cpu_model is not None:
        out.append(
            Finding(
                "fail",
                "cpu-flags",
                f"the CPU ({f.cpu_model}) lacks {', '.join(lacking)}, which this image's code needs",
                "run it on a node whose CPU has them (TensorFlow's wheels need AVX), or build TensorFlow without them",
            )
        )
    store = f.store
    if needs.unpacked and store is not None and store.free is not None and store.free < needs.unpacked:
        out.append(
            Finding(
                "fail",
                "space",
                f"the store {store.path} has {_gib(store.free)} free; the image unpacks to {_gib(needs.unpacked)}",
                f"free {_gib(needs.unpacked - store.free)} or more there (envctl gc), or move the store to a larger disk",
            )
        )
    out += _gpu(needs, f)
    return tuple(out)


def _gpu(needs: ImageNeeds, f: NodeFacts) -> list[Finding]:
    # A CUDA image runs on a node without GPUs (the frameworks fall back to the CPU): only GPUs
    # that are there are held against it.
    if not needs.cuda or not f.gpus:
        return []
    out: list[Finding] = []
    floor, driver = _v(needs.min_driver), _v(f.driver)
    if floor is not None and driver is not None and driver < floor:
        out.append(
            Finding(
                "fail",
                "driver",
                f"driver {f.driver} is older than this image's minimum {needs.min_driver} (CUDA {needs.cuda})",
                f'install the R{floor.major} driver (>= {needs.min_driver}) or newer, or lock an older CUDA (targets.driver = "{f.driver}")',
            )
        )
    sass, ptx = [_v(a) for a in needs.gpu_archs], [_v(p) for p in needs.ptx]
    if not (sass or ptx):
        return out
    for gpu in f.gpus:
        cc = _v(gpu.cc)
        if cc is None:
            continue
        runs = any(a is not None and a.major == cc.major and a.minor <= cc.minor for a in sass) or any(
            p is not None and p <= cc for p in ptx
        )
        if not runs:
            out.append(
                Finding(
                    "fail",
                    "gpu-arch",
                    f"{gpu.name} (CC {cc}) has no kernels in this image (SASS {', '.join(needs.gpu_archs) or 'none'}; PTX {', '.join(needs.ptx) or 'none'})",
                    "lock a framework build that targets this GPU (the profile's targets.gpus), or leave the node out (--limit)",
                )
            )
            break
    return out
