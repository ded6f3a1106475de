from __future__ import annotations

from typing import Any

from envctl.adapters.profile_file import parse_profile
from envctl.core.matrix import Matrix
from envctl.core.solution import Solution
from envctl.core.stack import solve


def profile(frameworks: dict[str, Any] | None = None, **targets: Any) -> dict[str, Any]:
    env = {"name": "t"}
    if "python" in targets:
        env["python"] = targets.pop("python")
    data: dict[str, Any] = {"environment": env, "frameworks": frameworks or {}, "targets": targets}
    if "blas" in targets:
        data["blas"] = {"prefer": targets.pop("blas")}
    return data


def run(matrix: Matrix, data: dict[str, Any]) -> Solution:
    return solve(parse_profile(data, "test.toml"), matrix)


def version_of(solution: Solution, name: str) -> str:
    return next(f.version for f in solution.frameworks if f.name == name)


def build_of(solution: Solution, name: str, platform: str = "linux-64") -> Any:
    return next(f.builds[platform] for f in solution.frameworks if f.name == name)
