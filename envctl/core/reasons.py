"""How the solver records a rejected candidate, and which of the profile's requirements it blames.

``explain`` drops requirements by these ids to find the smallest conflicting set, so every
``Reason`` names the requirement ids (``environment.python``, ``targets.gpus.H100``, ...) behind it.
A reason may also carry its ``fact``: the clash stated once for every candidate it rejects (the
text varies per candidate, the fact does not), so that explanations can group the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.constraints import Problem

#: ``Reason.kind`` values that explanations restate in their own words (with one driver floor)
DRIVER = "driver"  # the driver runs none of the toolkits a build accepts
PTX_JIT = "ptx-jit"  # a GPU runs a build only by PTX JIT, which minor-version compatibility rules out
NO_COMMON_CUDA = "no-common-cuda"  # the frameworks' builds share no CUDA toolkit
LIBRARY = "library"  # the frameworks' pins of one library (cuDNN, NCCL) share no release


@dataclass(frozen=True)
class Reason:
    """Why a candidate was rejected, and which requirements are to blame."""

    subject: str  # "torch 2.11.0 (cu130)", "torch 2.5.1 + tensorflow 2.15.1", "CUDA 12.6", "python"
    text: str
    blame: frozenset[str]
    fact: str = ""  # the same for every candidate this clash rejects; "" when ``text`` is that
    kind: str = ""  # one of the constants above, or ""


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


def span(items: Sequence[object]) -> str:
    """``a``, ``a, b``, ``a, b, c`` or ``a … z`` for an ordered run of releases or toolkits."""
    texts = [str(i) for i in items]
    if len(texts) <= 3:
        return ", ".join(texts)
    return f"{texts[0]} … {texts[-1]}"


def python_span(spec: SpecifierSet, known: Iterable[Version]) -> str:
    """The Python releases of ``known`` that ``spec`` admits, as a span (``3.9 … 3.13``)."""
    versions = sorted(v for v in known if v in spec)
    return span(versions) if versions else f"none of the known ({spec})"


def spec_text(spec: SpecifierSet) -> str:
    """``>=9.10.2.21,<10.0`` rather than packaging's ``<10.0,>=9.10.2.21``: lower bounds first."""
    order = {"==": 0, "===": 0, "~=": 1, ">=": 1, ">": 1, "!=": 2, "<=": 3, "<": 3}
    return ",".join(str(s) for s in sorted(spec, key=lambda s: (order.get(s.operator, 4), str(s))))


def pins_fact(library: str, wants: Iterable[tuple[str, SpecifierSet]]) -> str:
    """``cuDNN: torch pins 9.1.0.70, jax needs >=9.10.2.21,<10.0``: one library's clash, stated
    once per framework whichever of its builds was tried."""
    parts: dict[str, None] = {}
    for framework, spec in wants:
        exact = [s.version for s in spec if s.operator == "=="]
        parts.setdefault(f"{framework} pins {exact[0]}" if exact else f"{framework} needs {spec_text(spec)}")
    return f"{library}: {', '.join(parts)}"
