"""compat_matrix/torch.toml's PyTorch-index rows against what PyTorch published for each build.

download.pytorch.org cannot be read from where the matrix is written, so the index rows cannot be
refreshed or locked like the PyPI ones. tests/fixtures/published/torch_index.json holds what the
references say instead: PyTorch's build scripts at each release (pytorch/builder, pytorch/test-infra,
pytorch/pytorch .ci: CUDA update, cuDNN, NCCL, arch list, +PTX), uv locks of the index wheels
(replicate/monobase: the wheels' own Requires-Dist) and RELEASE.md, each row with its sources.
Every row the references confirm must be in the matrix with those values; where the matrix trusts
another source, the deviation is listed here with its reason (and must still be needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.matrix import Build, Matrix

PUBLISHED = Path(__file__).resolve().parents[2] / "fixtures" / "published" / "torch_index.json"
ROWS: list[dict[str, Any]] = json.loads(PUBLISHED.read_text())["rows"]
PLATFORM = {"linux-x86_64": "linux-64", "linux-aarch64": "linux-aarch64"}

PTX_AS_PYPI = "ptx: as the PyPI wheel of the same build, whose libtorch_python.so names no compute_120"
#: (release, platform, variant, field) -> why the matrix differs from the published value
DEVIATIONS: dict[tuple[str, str, str, str], str] = {
    **{(v, "linux-aarch64", "cu130", "ptx"): PTX_AS_PYPI for v in ("2.11.0", "2.12.0", "2.13.0", "2.14.0")},
    **{
        (v, "linux-64", "cu130", "cuda_update"): "the PyPI wheel of the same build pins cuda-toolkit==13.0.3"
        for v in ("2.13.0", "2.14.0")
    },
    ("2.8.0", "linux-aarch64", "cu129", "sm"): "sm_80 reached the 12.9 sbsa build in July 2025 (PR 157830)",
}
#: published builds the matrix leaves out on purpose
LEFT_OUT = {
    (
        "linux-aarch64",
        "cpu",
    ): "before 2.6 the whl/cpu aarch64 wheel carries no +cpu label and is the PyPI CPU wheel",
}


def _published_builds() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in ROWS:
        confirmed = row["exists"] is True
        probable = isinstance(row["exists"], str) and row["exists"].startswith("probable")
        if confirmed or probable:
            out.append((f"{row['torch'][0]}-{row['platform'][6:]}-{row['variant']}", row))
    return out


def _index_builds(matrix: Matrix, row: dict[str, Any]) -> list[Build]:
    fw = matrix.framework("torch")
    assert fw is not None
    platform = PLATFORM[row["platform"]]
    return [
        b
        for b in fw.builds
        if b.index.name == f"pytorch-{row['variant']}"
        and platform in b.platforms
        and any(str(v) in row["torch"] for v in b.versions)
    ]


def _compare(b: Build, row: dict[str, Any]) -> dict[str, tuple[object, object]]:
    """field -> (matrix, published) for every published value the matrix does not carry."""
    wrong: dict[str, tuple[object, object]] = {}

    def check(field: str, have: object, want: object) -> None:
        options = list(want.values()) if isinstance(want, dict) and "either" not in want else [want]
        if isinstance(want, dict) and "either" in want:
            options = list(want["either"])
        if have not in options:
            wrong[field] = (have, want)

    update = row["cuda_update"]
    if update is not None:
        check("cuda_update", str(b.cuda_update) if b.cuda_update else None, update)
    cudnn = row["cudnn"]
    if isinstance(cudnn, dict) and "value" in cudnn:
        cudnn = cudnn["value"]  # assumed equal to the x86_64 build's by the references too
    if cudnn is not None:
        specs = {k: SpecifierSet(f"=={v}") for k, v in cudnn.items()} if isinstance(cudnn, dict) else None
        want: object = specs if specs else SpecifierSet(f"=={cudnn}")
        check("cudnn", b.cudnn, want)
    nccl = row["nccl"]
    if nccl == "bundled":
        check("nccl", b.nccl, None)
    elif nccl is not None:
        check("nccl", b.nccl, SpecifierSet(f"=={nccl}"))
    if row["cuda_libs"] is not None:
        check("cuda_libs", b.cuda_libs, row["cuda_libs"])
    if row["sm"] is not None:
        check("sm", [str(a) for a in b.archs], row["sm"])
    if row["ptx"] is not None:
        check("ptx", [str(p) for p in b.ptx], row["ptx"])
    if row["cuda"] is not None and b.cuda is not None:
        check("cuda", Version(row["cuda"]) in b.cuda, True)
    return wrong


@pytest.mark.parametrize(
    ("row"), [r for _, r in _published_builds()], ids=[i for i, _ in _published_builds()]
)
def test_index_row_carries_the_published_pins(real_matrix: Matrix, row: dict[str, Any]) -> None:
    platform = PLATFORM[row["platform"]]
    builds = _index_builds(real_matrix, row)
    if not builds:
        if row["exists"] is not True:
            return  # a probable build the matrix does not list: nothing to hold it to
        release = Version(row["torch"][0])
        assert (platform, row["variant"]) in LEFT_OUT and release < Version("2.6"), (
            f"torch {row['torch']} {row['variant']} on {platform} is published but not in torch.toml"
        )
        return
    for b in builds:
        listed = {str(v) for v in b.versions}
        assert listed <= set(row["torch"]) | listed, b
        wrong = _compare(b, row)
        for field in list(wrong):
            if (row["torch"][0], platform, row["variant"], field) in DEVIATIONS:
                del wrong[field]
        assert not wrong, (
            f"torch {row['torch']} {row['variant']} {platform} ({'; '.join(row['sources'])}): {wrong}"
        )


def test_every_deviation_is_still_needed(real_matrix: Matrix) -> None:
    used = set()
    for _, row in _published_builds():
        for b in _index_builds(real_matrix, row):
            for field in _compare(b, row):
                used.add((row["torch"][0], PLATFORM[row["platform"]], row["variant"], field))
    assert set(DEVIATIONS) <= used, set(DEVIATIONS) - used


def test_builds_published_as_absent_are_not_listed(real_matrix: Matrix) -> None:
    absent = [r for r in ROWS if r["exists"] is False]
    assert absent  # torch 2.4 has no aarch64 CUDA build (pytorch issue 134790)
    for row in absent:
        assert not _index_builds(real_matrix, row), row
