"""The lock checks on a real, working GPU stack must not flag anything.

tests/fixtures/lock/h200-installed-2026-11-26.txt was recorded on the lent H200 machine (driver
580.159.04): every installed torch/nvidia/cuda distribution with its wheel tags, and a torch
matmul on the GPU that ran with CUDA 13.0, cuDNN 9.19.0 and NCCL 2.28.9. The solver's request for
that GPU, driver and torch version must accept the closure as it is installed there.
"""

from __future__ import annotations

from pathlib import Path

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import parse_profile
from envctl.core.lock import LockEntry
from envctl.core.lockcheck import check_platform
from envctl.core.stack import solve

RECORD = Path(__file__).parents[2] / "fixtures" / "lock" / "h200-installed-2026-11-26.txt"


def _installed() -> tuple[str, str, list[LockEntry]]:
    lines = [line for line in RECORD.read_text().splitlines() if not line.startswith("#")]
    gpu, driver = (part.strip() for part in lines[0].split(","))
    entries = []
    for line in lines:
        if not line.startswith("DIST "):
            continue
        _, name, version, tags, *_ = line.split(" ", 4)
        parts = [tag.split("-") for tag in tags.split(",")]
        py, abi, plat = (".".join(sorted({p[i] for p in parts})) for i in range(3))
        filename = f"{name.replace('-', '_')}-{version}-{py}-{abi}-{plat}.whl"
        entries.append(LockEntry("pip", name, version, "linux-64", f"file:///site/{filename}"))
    return gpu, driver, entries


def test_working_h200_stack_passes_the_checks() -> None:
    gpu, driver, entries = _installed()
    assert (gpu, driver) == ("NVIDIA H200", "580.159.04")
    profile = parse_profile(
        {
            "environment": {"name": "h200", "python": "==3.12.*"},
            "frameworks": {"torch": "==2.11.0"},
            "targets": {"arch": ["x86_64"], "gpus": [gpu], "driver": driver},
        },
        "h200",
    )
    request = solve(profile, load_matrix()).request_for("linux-64")
    # what torch reported on the GPU: CUDA 13.0, cuDNN 91900, NCCL (2, 28, 9)
    assert (request.expect.cuda, request.expect.cudnn, request.expect.nccl) == ("13.0", "9.19.0.56", "2.28.9")
    assert check_platform(entries, request, offline=True) == ()


def test_the_same_stack_with_a_mixed_cuda_minor_is_flagged() -> None:
    gpu, driver, entries = _installed()
    profile = parse_profile(
        {
            "environment": {"name": "h200", "python": "==3.12.*"},
            "frameworks": {"torch": "==2.11.0"},
            "targets": {"arch": ["x86_64"], "gpus": [gpu], "driver": driver},
        },
        "h200",
    )
    request = solve(profile, load_matrix()).request_for("linux-64")
    mixed = [
        *entries,
        LockEntry("pip", "nvidia-cuda-nvcc", "13.2.78", "linux-64", "file:///x/a-1-py3-none-any.whl"),
    ]
    (problem,) = check_platform(mixed, request, offline=True)
    assert "mixes CUDA minor versions" in problem and "nvidia-cuda-nvcc 13.2.78" in problem
