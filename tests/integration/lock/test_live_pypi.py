"""One live lock against the real PyPI: torch 2.5.1 (CUDA 12.4 default build), two platforms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envctl.adapters.lockfile import read_lock
from envctl.core.lock import LockOptions
from envctl.services.lock.lock import lock_profile
from envctl.services.solve.solve import solve_profile_file

pytestmark = [pytest.mark.integration, pytest.mark.network]

PROFILE = Path(__file__).parents[2] / "fixtures" / "lock" / "torch-2.5.1-pypi.toml"
# COMPAT_FACTS 3b: the pins in torch 2.5.1's PyPI x86_64 METADATA
PINS = {
    "nvidia-cudnn-cu12": "9.1.0.70",
    "nvidia-cuda-runtime-cu12": "12.4.127",
    "nvidia-nccl-cu12": "2.21.5",
    "nvidia-cublas-cu12": "12.4.5.8",
}


def test_torch_251_from_pypi_for_two_platforms(tmp_path: Path) -> None:
    out = tmp_path / "conda-lock.yml"
    result = lock_profile(PROFILE, LockOptions(output=out, exclude_newer="2025-06-01T00:00:00Z"))
    assert result.status == "written"
    solution = solve_profile_file(PROFILE).solution
    lock = read_lock(out)
    x86 = {e.name: e for e in lock.for_platform("linux-64")}
    arm = {e.name: e for e in lock.for_platform("linux-aarch64")}
    assert x86["torch"].version == arm["torch"].version == "2.5.1"
    for name, version in PINS.items():
        assert x86[name].version == version, name
    # the matrix agrees with what PyPI served
    assert (solution.cudnn, solution.nccl, solution.cuda) == ("9.1.0.70", "2.21.5", "12.4")
    assert not [n for n in arm if n.startswith("nvidia-")]  # aarch64 torch <= 2.10 is CPU-only
    assert "aarch64" in arm["torch"].filename and "x86_64" in x86["torch"].filename
    for entry in lock.entries:
        assert entry.url.startswith("https://files.pythonhosted.org/"), entry.url
        assert entry.sha256 and re.fullmatch(r"[0-9a-f]{64}", entry.sha256)


def test_lock_for_the_h200_machine_matches_its_working_install(tmp_path: Path) -> None:
    # tests/fixtures/lock/h200-installed-2026-11-26.txt: what runs on the lent H200 machine
    record = PROFILE.parent / "h200-installed-2026-11-26.txt"
    installed = {
        line.split()[1].lower(): line.split()[2]
        for line in record.read_text().splitlines()
        if line.startswith("DIST ")
    }
    out = tmp_path / "conda-lock.yml"
    options = LockOptions(output=out, exclude_newer="2026-11-26T00:00:00Z")
    lock_profile(PROFILE.parent / "torch-2.11.0-h200.toml", options)
    locked = {e.name: e.version for e in read_lock(out).for_platform("linux-64")}
    gpu_stack = {n: v for n, v in locked.items() if n.startswith("nvidia-") or n in ("torch", "triton")}
    assert len(gpu_stack) == 17  # 15 nvidia-* wheels, torch, triton
    assert {n: installed.get(n) for n in gpu_stack} == gpu_stack


@pytest.mark.parametrize("name", ["jax-research-a100", "mixed-torch-jax"])
def test_ranged_jax_is_held_to_the_solved_cuda_minor(tmp_path: Path, name: str) -> None:
    # jax[cuda12] accepts any 12.x; the solution's constraints must keep every toolkit-versioned
    # nvidia wheel on the solved minor (the lock's own CUDA-mixing check would refuse otherwise).
    profile = Path(__file__).parents[3] / "profiles" / f"{name}.toml"
    out = tmp_path / "conda-lock.yml"
    lock_profile(profile, LockOptions(output=out, exclude_newer="2026-11-26T00:00:00Z"))
    solution = solve_profile_file(profile).solution
    entries = {e.name: e for e in read_lock(out).for_platform("linux-64")}
    assert entries["nvidia-cuda-runtime-cu12"].version.startswith(f"{solution.cuda}.")
    assert entries["nvidia-cudnn-cu12"].version == solution.cudnn
