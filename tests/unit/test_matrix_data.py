"""Self-consistency of the committed compat_matrix/ data, read with plain tomllib.

Each check is a function returning the problems it finds, so that every test also proves, on a
deliberately broken copy of the data, that the check can fail.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MATRIX = Path(__file__).resolve().parents[2] / "compat_matrix"
FILES = (
    "sources", "cuda", "gpus", "compute_capability", "cudnn", "python", "blas",
    "torch", "tensorflow", "jax",
)  # fmt: skip
FRAMEWORKS = ("torch", "tensorflow", "jax")
Data = dict[str, Any]


@pytest.fixture(scope="module")
def data() -> Data:
    return {name: tomllib.loads((MATRIX / f"{name}.toml").read_text()) for name in FILES}


def rows(data: Data) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every table that states a fact: (file/table, row)."""
    for file, table in (
        ("cuda", "toolkit"), ("cuda", "major"), ("gpus", "gpu"), ("compute_capability", "cc"),
        ("cudnn", "cudnn"), ("blas", "blas"), ("torch", "build"), ("tensorflow", "build"),
        ("jax", "build"),
    ):  # fmt: skip
        for row in data[file][table]:
            yield f"{file}.{table}", row
    yield "python", data["python"]


def toolkits(data: Data) -> list[Version]:
    return [Version(t["version"]) for t in data["cuda"]["toolkit"]]


def build_toolkits(data: Data, build: dict[str, Any]) -> list[Version]:
    """The CUDA toolkits of cuda.toml that a build's `cuda` specifier admits."""
    spec = SpecifierSet(build["cuda"])
    return [t for t in toolkits(data) if t in spec]


def cuda_builds(data: Data) -> Iterator[tuple[str, dict[str, Any]]]:
    for fw in FRAMEWORKS:
        for build in data[fw]["build"]:
            if build["variant"] != "cpu":
                yield fw, build


def label(fw: str, build: dict[str, Any]) -> str:
    return f"{fw} {build['versions'][0]} {build['variant']} {build['index']} {build['platforms']}"


# ---- checks -------------------------------------------------------------------------------------


def source_problems(data: Data) -> list[str]:
    keys = set(data["sources"]["sources"])
    out = []
    for where, row in rows(data):
        source = row.get("source")
        if not isinstance(source, str) or not source.strip():
            out.append(f"{where}: no source")
            continue
        for part in source.split(";"):
            key = part.strip().split(":", 1)[0].strip()
            if key not in keys:
                out.append(f"{where}: unknown source key {key!r}")
        if not isinstance(row.get("inferred", False), bool):
            out.append(f"{where}: inferred must be true/false")
    return out


def cudnn_problems(data: Data) -> list[str]:
    """Each CUDA build's cuDNN pin names a listed cuDNN release that supports one of its CUDAs."""
    releases = [
        (Version(v), [SpecifierSet(r) for r in series["cuda"]])
        for series in data["cudnn"]["cudnn"]
        for v in series["versions"]
    ]
    out = []
    for fw, build in cuda_builds(data):
        if "cudnn" not in build:
            out.append(f"{label(fw, build)}: a CUDA build without a cudnn pin")
            continue
        pin = SpecifierSet(build["cudnn"])
        matching = [ranges for v, ranges in releases if v in pin]
        if not matching:
            out.append(f"{label(fw, build)}: cudnn {pin} matches no release in cudnn.toml")
            continue
        cudas = build_toolkits(data, build)
        if not any(t in r for ranges in matching for r in ranges for t in cudas):
            out.append(f"{label(fw, build)}: no cudnn {pin} supports CUDA {build['cuda']}")
    return out


def arch_problems(data: Data) -> list[str]:
    """Every compiled arch (SASS or PTX) is one the build's CUDA can target."""
    ccs = {c["cc"]: c for c in data["compute_capability"]["cc"]}
    out = []
    for fw, build in cuda_builds(data):
        cudas = build_toolkits(data, build)
        if not cudas:
            out.append(f"{label(fw, build)}: cuda {build['cuda']} matches no toolkit in cuda.toml")
        for arch in [*build.get("archs", []), *build.get("ptx", []), build.get("min_cc")]:
            if arch is None:
                continue
            if arch not in ccs:
                out.append(f"{label(fw, build)}: arch {arch} not in compute_capability.toml")
                continue
            first = Version(ccs[arch]["first_cuda"])
            last = Version(ccs[arch].get("last_cuda", "999"))
            for cuda in cudas:
                if not first <= cuda <= last and arch != build.get("min_cc"):
                    out.append(f"{label(fw, build)}: CUDA {cuda} cannot compile for {arch}")
        if not build.get("archs") and not build.get("min_cc"):
            out.append(f"{label(fw, build)}: neither archs nor min_cc")
    return out


def gpu_problems(data: Data) -> list[str]:
    ccs = {c["cc"] for c in data["compute_capability"]["cc"]}
    out = [f"gpu {g['name']}: cc {g['cc']} unknown" for g in data["gpus"]["gpu"] if g["cc"] not in ccs]
    seen: dict[str, str] = {}
    for gpu in data["gpus"]["gpu"]:
        for name in {gpu["name"].lower(), *(a.lower() for a in gpu["aliases"])}:
            if name in seen and seen[name] != gpu["name"]:
                out.append(f"alias {name!r} names both {seen[name]} and {gpu['name']}")
            seen[name] = gpu["name"]
        if not isinstance(gpu["datacenter"], bool):
            out.append(f"gpu {gpu['name']}: datacenter must be true/false")
    return out


def toolkit_problems(data: Data) -> list[str]:
    majors = {m["major"] for m in data["cuda"]["major"]}
    out = [f"toolkit {t}: no [[major]] row" for t in toolkits(data) if t.major not in majors]
    drivers = [Version(t["min_driver"]) for t in data["cuda"]["toolkit"]]
    if toolkits(data) != sorted(toolkits(data)) or drivers != sorted(drivers):
        out.append("toolkits and their drivers must both ascend")
    for cc in data["compute_capability"]["cc"]:
        if "last_cuda" in cc and Version(cc["last_cuda"]) < Version(cc["first_cuda"]):
            out.append(f"cc {cc['cc']}: last_cuda before first_cuda")
    return out


def overlap_problems(data: Data) -> list[str]:
    """No release is listed twice for the same variant, index and platform."""
    out = []
    for fw in FRAMEWORKS:
        seen: dict[tuple[str, str, str, str], int] = {}
        for i, build in enumerate(data[fw]["build"]):
            for platform in build["platforms"]:
                for version in build["versions"]:
                    key = (build["variant"], build["index"], platform, version)
                    if key in seen:
                        out.append(f"{fw}: {key} in rows {seen[key]} and {i}")
                    seen[key] = i
    return out


def row_shape_problems(data: Data) -> list[str]:
    pythons = [Version(v) for v in data["python"]["versions"]]
    out = []
    for fw in FRAMEWORKS:
        indexes = {"pypi", *data[fw].get("indexes", {})}
        for build in data[fw]["build"]:
            where = label(fw, build)
            if build["index"] not in indexes:
                out.append(f"{where}: unknown index")
            if not any(p in SpecifierSet(build["python"]) for p in pythons):
                out.append(f"{where}: python {build['python']} admits no version of python.toml")
            if build["variant"] == "cpu" and "cuda" in build:
                out.append(f"{where}: a cpu build with cuda")
            versions = [Version(v) for v in build["versions"]]
            if versions != sorted(versions) or not versions:
                out.append(f"{where}: versions must be non-empty and ascending")
    for series in data["cudnn"]["cudnn"]:
        for v in series["versions"]:
            if not v.startswith(series["series"] + "."):
                out.append(f"cudnn {series['series']}: release {v} belongs to another series")
    return out


CHECKS = [
    source_problems, cudnn_problems, arch_problems, gpu_problems, toolkit_problems,
    overlap_problems, row_shape_problems,
]  # fmt: skip


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_committed_matrix_is_consistent(data: Data, check: Any) -> None:
    assert check(data) == []


# ---- each check fails on a broken copy ----------------------------------------------------------


def _torch_row(data: Data, version: str, variant: str) -> dict[str, Any]:
    return next(b for b in data["torch"]["build"] if version in b["versions"] and b["variant"] == variant)


def _break(data: Data, how: str) -> Data:
    broken = copy.deepcopy(data)
    if how == "source":
        broken["gpus"]["gpu"][0]["source"] = "NOWHERE:made up"
    elif how == "cudnn":  # 8.9 does not support CUDA 12.4
        _torch_row(broken, "2.5.1", "cu124")["cudnn"] = "==8.9.2.26"
    elif how == "arch":  # CUDA 13.0 no longer compiles for Volta
        _torch_row(broken, "2.14.0", "cu130")["archs"].append("7.0")
    elif how == "gpu":
        broken["gpus"]["gpu"][1]["aliases"].append("Tesla K80")
    elif how == "toolkit":
        broken["cuda"]["toolkit"].append({"version": "14.0", "min_driver": "700.1", "source": "CUDA-RN"})
    elif how == "overlap":
        broken["torch"]["build"].append(copy.deepcopy(_torch_row(broken, "2.5.1", "cu124")))
    elif how == "shape":
        _torch_row(broken, "2.5.1", "cu124")["python"] = ">=3.99"
    return broken


@pytest.mark.parametrize(
    ("check", "how", "expected"),
    [
        (source_problems, "source", "unknown source key 'NOWHERE'"),
        (cudnn_problems, "cudnn", "no cudnn ==8.9.2.26 supports CUDA ==12.4"),
        (arch_problems, "arch", "CUDA 13.0 cannot compile for 7.0"),
        (gpu_problems, "gpu", "alias 'tesla k80' names both K80 and K40"),
        (toolkit_problems, "toolkit", "toolkit 14.0: no [[major]] row"),
        (overlap_problems, "overlap", "('cu124', 'pypi', 'linux-64', '2.5.1')"),
        (row_shape_problems, "shape", "admits no version of python.toml"),
    ],
)
def test_each_check_catches_a_broken_row(data: Data, check: Any, how: str, expected: str) -> None:
    problems = check(_break(data, how))
    assert any(expected in p for p in problems), problems
