"""Solve a profile file: load the matrix and the profile, apply command-line targets, solve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import apply_overrides, load_profile
from envctl.core.matrix import Matrix
from envctl.core.solution import Solution
from envctl.core.stack import solve


@dataclass(frozen=True)
class SolveOutcome:
    solution: Solution
    profile_hash: str  # sha256 of the canonical profile (plus command-line targets)
    matrix_hash: str  # sha256 over compat_matrix/*.toml
    base_image: str | None = None  # the profile's environment.base_image: the image to build on


def solve_profile_file(
    path: Path,
    *,
    matrix_dir: Path | None = None,
    gpus: tuple[str, ...] = (),
    driver: str | None = None,
    arch: tuple[str, ...] = (),
    matrix: Matrix | None = None,
) -> SolveOutcome:
    """Solve ``path``; raises InputError for bad input and UnsatisfiableError with an explanation."""
    matrix = matrix or load_matrix(matrix_dir)
    profile, digest = load_profile(path)
    profile = apply_overrides(profile, gpus=gpus, driver=driver, arch=arch)
    if gpus or driver or arch:
        import hashlib

        extra = f"{digest}|gpus={','.join(gpus)}|driver={driver}|arch={','.join(arch)}"
        digest = hashlib.sha256(extra.encode()).hexdigest()
    return SolveOutcome(solve(profile, matrix), digest, matrix.version, profile.base_image)
