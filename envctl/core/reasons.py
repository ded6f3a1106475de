"""How the solver records a rejected candidate, and which of the profile's requirements it blames.

``explain`` drops requirements by these ids to find the smallest conflicting set, so every
``Reason`` names the requirement ids (``environment.python``, ``targets.gpus.H100``, ...) behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

from envctl.core.constraints import Problem


@dataclass(frozen=True)
class Reason:
    """Why a candidate was rejected, and which requirements are to blame."""

    subject: str  # "torch 2.11.0", "CUDA 12.6", "python"
    text: str
    blame: frozenset[str]


def requirement_key(problem: Problem, framework: str) -> str:
    """The id of the requirement that asked for ``framework`` (``frameworks.torch``)."""
    return next((f.key for f in problem.profile.frameworks if f.name == framework), framework)


def platform_blame(problem: Problem, platform: str) -> frozenset[str]:
    """Blame the platform too when the profile names several (dropping one may solve it)."""
    return (
        frozenset({f"targets.arch.{platform}"}) if len(problem.profile.targets.platforms) > 1 else frozenset()
    )


def most_relevant(why: list[Reason]) -> list[Reason]:
    """Keep the first reason per subject: builds are tried in preference order."""
    seen: dict[str, Reason] = {}
    for r in why:
        seen.setdefault(r.subject, r)
    return list(seen.values())
