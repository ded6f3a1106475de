"""The facts behind one conflict, as a short chain of because-steps (PubGrub's derivation, flat).

Every step speaks of releases the profile asks for: the search it reads keeps the profile's own
framework ranges, so no step names a release those ranges exclude. Most steps are the solver's
reasons grouped by the fact they share ("CUDA after 11.8 no longer targets K80 (CC 3.7)") over
the releases and builds it rejects. Three clashes are restated whole:
- a driver too old: one floor, the least driver under which the conflict solves (the same floor
  the ways out name), the CUDA it then runs and how, and what the nodes' driver runs instead;
- a GPU that only PTX JIT reaches, which minor-version compatibility does not allow;
- frameworks whose builds share no CUDA toolkit: the toolkits of each, and their cuDNN pins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envctl.core.build_fit import candidate_builds
from envctl.core.constraints import Problem
from envctl.core.driver_fit import what_driver_runs
from envctl.core.matrix import Build, Matrix
from envctl.core.profile import FrameworkRequest
from envctl.core.reasons import DRIVER, LIBRARY, NO_COMMON_CUDA, PTX_JIT, Reason
from envctl.core.solver import Found

MAX_STEPS = 4


@dataclass(frozen=True)
class Floor:
    """The least driver under which a conflict solves, the stack it then gets, and the problem
    (requirements in force) it was found for: the step names that problem's frameworks."""

    driver: Version
    stack: Found
    within: Problem


_RELEASE = re.compile(r"^(?P<name>[A-Za-z][\w.-]*) (?P<version>\d[^\s()]*)(?: \((?P<variant>[^)]*)\))?$")


def chain(
    focus: Problem,
    matrix: Matrix,
    conflict: frozenset[str],
    names: dict[str, str],
    reasons: Sequence[Reason],
    floor: Floor | None,
) -> tuple[str, ...]:
    """The because-steps of ``conflict``, the clashing fact first.

    ``focus``: the problem with the conflict (and the profile's framework ranges) in force;
    ``reasons``: its search's; ``names``: requirement id -> how the profile says it;
    ``floor``: the least driver that solves it, where the conflict holds the driver."""
    facts = [r for r in reasons if not r.text.startswith("excluded by")]
    steps: list[str] = []
    if "targets.driver" in conflict and floor is not None:
        steps += _driver_steps(floor.within, matrix, conflict, names, floor)
        facts = [r for r in facts if r.kind not in (DRIVER, PTX_JIT)]
    clash = [r for r in facts if r.kind == NO_COMMON_CUDA]
    if clash:
        steps.append(_cuda_clash(focus, matrix, clash))
        facts = [r for r in facts if r.kind != NO_COMMON_CUDA]
    steps += _grouped(focus, matrix, conflict, facts)
    return tuple(dict.fromkeys(steps))[:MAX_STEPS]


def _driver_steps(
    focus: Problem,
    matrix: Matrix,
    conflict: frozenset[str],
    names: dict[str, str],
    floor: Floor,
) -> list[str]:
    version, found = floor.driver, floor.stack
    driver = focus.profile.targets.driver
    if driver is None or found.cuda is None or found.driver is None:
        return []  # no CUDA in that stack (CPU-only): there is no driver fact to state
    mode = found.driver.mode
    frameworks = [
        _request_text(f, focus)
        for f in focus.profile.frameworks
        if focus.on(f.key) or f"{f.key}.extras" in conflict
    ]
    others = [
        names[r]
        for r in sorted(conflict)
        if not r.startswith("frameworks.") and r not in ("targets.driver", "targets.forward_compat")
    ]
    anyhow = [f.name for f in focus.profile.frameworks if not focus.on(f.key) and str(f.spec)]
    who = (
        " + ".join(frameworks + others)
        or (f"every {_and(anyhow)} release" if anyhow else "")
        or " + ".join(f.name for f in focus.profile.frameworks)
    )
    how = "natively" if mode == "native" else f"by {mode}"
    major = matrix.major(found.cuda.version.major)
    if mode == "native" and major is not None and major.min_driver < version:
        # Minor-version compatibility would have done with a lower floor, but for PTX JIT.
        builds = [b for p, picks in found.builds.items() if focus.gpu_platform(p) for b in picks]
        versions = {fw.name: v for fw, v in found.versions}
        jit = [(g, b) for g in focus.active_gpus() for b in builds if b.needs_jit(g.cc)]
        if jit:
            gpu, b = jit[0]
            how += (
                f": {gpu.name} (CC {gpu.cc}) runs {b.framework} {versions.get(b.framework, '')} ({b.variant}) "
                f"only by {b.runs_on(gpu.cc)}, which minor-version compatibility does not allow"
            )
    first = [g for g in focus.active_gpus() if g.min_driver is not None and g.min_driver == version]
    if first:  # the floor is a GPU's first driver, not a toolkit's (B200: 570.133.20)
        steps = [
            f"{first[0].name} needs driver >= {version} whatever the CUDA toolkit (the first driver for "
            f"it; {who} then runs CUDA {found.cuda.version} {how}), and the nodes have {driver}"
        ]
    else:
        steps = [
            f"{who} needs driver >= {version} (CUDA {found.cuda.version} {how}), "
            f"but {what_driver_runs(matrix, driver)}"
        ]
    if "targets.forward_compat" in conflict:
        consumer = [g.name for g in focus.gpus if not g.datacenter]
        steps.append(
            f"NVIDIA's cuda-compat package runs a newer CUDA on data-center GPUs only, and {', '.join(consumer)} "
            f"{'is' if len(consumer) == 1 else 'are'} not"
            if consumer
            else "forward compatibility is off (targets.forward_compat): NVIDIA's cuda-compat package "
            "would run a newer CUDA on these data-center GPUs"
        )
    return steps


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _request_text(request: FrameworkRequest, focus: Problem | None = None) -> str:
    """``jax[cuda12]`` or ``torch >=2.11``: a framework as the profile asks for it (its extras
    only where they are in force)."""
    shown = request.extras if focus is None or focus.on(f"{request.key}.extras") else ()
    extras = f"[{','.join(shown)}]" if shown else ""
    return f"{request.name}{extras}" + (f" {request.spec}" if str(request.spec) else "")


def either(focus: Problem, conflict: frozenset[str], reasons: Sequence[Reason]) -> str:
    """Where the conflict holds with any release of a framework whose range is not in it, say so:
    ``no torch release avoids it`` (relaxing torch's range alone cannot help)."""
    mentioned = set(_releases_by_framework(reasons))
    free = [
        request.name
        for request in focus.profile.frameworks
        if request.key not in conflict
        and f"{request.key}.extras" not in conflict
        and str(request.spec)
        and request.name in mentioned
    ]
    return f"no {' or '.join(free)} release avoids it" if free else ""


def _cuda_clash(focus: Problem, matrix: Matrix, reasons: Sequence[Reason]) -> str:
    """``torch 2.5.1 is built for CUDA 11.8, 12.1, 12.4; tensorflow 2.15.1 for CUDA 12.2``. Where
    the statement holds for every release of the frameworks' ranges, it is made of the ranges
    (the search skips such runs whole and names one witness combination for them)."""
    witnesses = _releases_by_framework(reasons)
    platforms = [p for p in focus.platforms() if focus.gpu_platform(p)]
    toolkits = [t.version for t in matrix.toolkits]

    def offer(name: str, versions: Sequence[Version]) -> tuple[list[Build], list[Version]]:
        fw = matrix.framework(name)
        builds = [
            b
            for v in versions
            for p in platforms
            for b in (candidate_builds(fw, v, p, True, focus.extras(name)) if fw else [])
        ]
        return builds, [t for t in toolkits if any(b.cuda is not None and t in b.cuda for b in builds)]

    wanted = dict(witnesses)
    ranged = {}
    for name in witnesses:
        fw, request = (
            matrix.framework(name),
            next((f for f in focus.profile.frameworks if f.name == name), None),
        )
        if fw is not None and request is not None and focus.on(request.key):
            ranged[name] = [v for v in fw.versions() if v in focus.spec(request) and offer(name, [v])[1]]
    if ranged and len(ranged) == len(witnesses):
        sets = [set(offer(name, vs)[1]) for name, vs in ranged.items()]
        if not set.intersection(*sets):
            wanted = ranged
    parts, pins = [], []
    for name, versions in wanted.items():
        builds, accepted = offer(name, versions)
        variants = list(dict.fromkeys(b.variant for b in builds))
        who = f"{name} {_release_runs(focus, matrix, name, versions)}"
        parts.append(f"{who} is built for CUDA {runs(accepted, toolkits)} ({', '.join(variants)})")
        pins.append((who, _exact_pins(builds, "cudnn")))
    text = "; ".join(parts) + f": no CUDA toolkit fits {'both' if len(parts) == 2 else 'all'}"
    exact = [(who, p) for who, p in pins if p]
    few = all(len(p) <= 2 for _, p in exact)
    if few and len(exact) == len(pins) > 1 and not set.intersection(*(set(p) for _, p in exact)):
        text += "; their cuDNN pins differ too: " + " vs ".join(f"{', '.join(p)} ({who})" for who, p in exact)
    return text


def _exact_pins(builds: Sequence[Build], what: str) -> list[str]:
    pins = {s.version for b in builds for s in (getattr(b, what) or ()) if s.operator == "=="}
    return sorted(pins, key=Version)


def _grouped(
    focus: Problem, matrix: Matrix, conflict: frozenset[str], reasons: Sequence[Reason]
) -> list[str]:
    """One step per fact, over the releases (and builds) it rejects; blamed on the conflict first."""
    groups: dict[str, list[Reason]] = {}
    for r in reasons:
        groups.setdefault(r.fact or r.text, []).append(r)
    in_force = conflict | focus.active

    def rank(item: tuple[str, list[Reason]]) -> int:
        blames = [r.blame for r in item[1]]
        if any(b and b & conflict and b <= in_force for b in blames):
            return 0
        return 1 if any(not b for b in blames) else 2

    # A library clash's subject names no releases ("cuDNN for CUDA 12.4"): say what is asked.
    asked = " + ".join(_request_text(f, focus) for f in focus.profile.frameworks if focus.on(f.key))

    def who(rs: list[Reason]) -> str:
        return (asked or _who(focus, matrix, rs)) if rs[0].kind == LIBRARY else _who(focus, matrix, rs)

    return [f"{who(rs)}: {fact}" for fact, rs in sorted(groups.items(), key=rank)[:MAX_STEPS]]


def _who(focus: Problem, matrix: Matrix, reasons: Sequence[Reason]) -> str:
    """The subjects of ``reasons`` in a few words: ``torch 2.10.0 … 2.15.0 (cu126, cu128)``."""
    versions: dict[str, list[Version]] = {}
    variants: dict[str, list[str]] = {}
    others: list[str] = []
    for r in reasons:
        parsed = _parse(r.subject)
        if not parsed:
            others.append(r.subject)
        for name, version, variant in parsed:
            versions.setdefault(name, []).append(version)
            if variant:
                variants.setdefault(name, []).append(variant)
    parts = []
    for name, vs in versions.items():
        part = f"{name} {_release_runs(focus, matrix, name, vs)}"
        if name in variants:
            part += f" ({', '.join(dict.fromkeys(variants[name]))})"
        parts.append(part)
    unique = list(dict.fromkeys(others))
    parts += unique[:2] + (["…"] if len(unique) > 2 else [])
    return " + ".join(parts)


def _parse(subject: str) -> list[tuple[str, Version, str]]:
    """``torch 2.5.1 (cu124) + tensorflow 2.15.1`` -> releases; [] for other subjects."""
    out = []
    for part in subject.split(" + "):
        m = _RELEASE.match(part.strip())
        if m is None:
            return []
        try:
            out.append((m["name"], Version(m["version"]), m["variant"] or ""))
        except InvalidVersion:
            return []
    return out


def _releases_by_framework(reasons: Sequence[Reason]) -> dict[str, list[Version]]:
    wanted: dict[str, list[Version]] = {}
    for r in reasons:
        for name, version, _ in _parse(r.subject):
            if version not in wanted.setdefault(name, []):
                wanted[name].append(version)
    return wanted


def _release_runs(focus: Problem, matrix: Matrix, name: str, versions: Sequence[Version]) -> str:
    fw = matrix.framework(name)
    request = next((f for f in focus.profile.frameworks if f.name == name), None)
    if fw is None or request is None:
        return runs(sorted(set(versions)), sorted(set(versions)))
    asked = sorted(v for v in fw.versions() if v in focus.spec(request))
    return runs(sorted(set(versions)), asked)


def runs(selected: Sequence[Version], order: Sequence[Version]) -> str:
    """``selected`` as runs of consecutive entries of ``order``: ``11.8, 12.1, 12.6 … 13.0``.
    A run of three or more is shortened to its ends, so a gap is never hidden."""
    chosen = set(selected)
    groups: list[list[Version]] = []
    last = -2
    for i, v in enumerate(order):
        if v in chosen:
            if i == last + 1:
                groups[-1].append(v)
            else:
                groups.append([v])
            last = i
    known = set(order)
    groups += [[v] for v in selected if v not in known]
    texts = [f"{g[0]} … {g[-1]}" if len(g) >= 3 else ", ".join(str(v) for v in g) for g in groups]
    return ", ".join(texts[:4]) + (", …" if len(texts) > 4 else "")
