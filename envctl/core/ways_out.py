"""Ways out of an unsatisfiable profile: relaxations that hit every conflict, each made into
edits of the profile file and solved before it is offered.

The loop is the implicit hitting-set search of MaxSAT solvers: try the cheapest set of
relaxations that takes one requirement from each known conflict; when the profile still fails,
what is left holds another conflict: find it, and try again with one of its members added. So
two conflicts give pairs of relaxations (drop K80 *and* upgrade the driver), and a relaxation
that only moves the problem is never offered. A conflict none of whose requirements can give
(the only GPU) is hit by running its platform CPU-only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.version import Version

from envctl.core.constraints import Problem, make_problem, resolve_gpu
from envctl.core.matrix import Build
from envctl.core.relax import (
    Edit,
    Searches,
    apply_edits,
    arch_names,
    framework_key,
    lowest_driver,
    minimal_conflict,
    within_last_branch,
)
from envctl.core.solver import Found, search
from envctl.errors import EnvctlError

MAX_RELAX = 3  # requirements one way out may give up
MAX_WAYS = 3
MAX_CONFLICTS = 6  # independent ones; those met while looking for ways out add up to 2 more
MAX_PRODUCT = 24  # first round of candidate sets, when several conflicts multiply
RESERVE = 15  # searches kept for running the GPU platforms CPU-only when nothing else works


@dataclass(frozen=True)
class WayOut:
    """A change to the profile that solves it, and what it then solves to."""

    relax: tuple[str, ...]  # the requirement ids it gives up
    text: str  # "use torch 2.10.0 (cu128) and upgrade the driver to >= 570.26 (CUDA 12.8)"
    edits: tuple[Edit, ...]  # the same, as changes to the profile file
    solves_to: dict[str, object]  # frameworks, python, cuda, min_driver, driver_mode
    driver: Version | None = None  # the driver floor it sets, if it sets one
    stack: Found | None = field(default=None, compare=False, repr=False)

    @property
    def outcome(self) -> str:
        """``torch 2.10.0 (cu128), Python 3.13, CUDA 12.8 (driver >= 525.60.13, minor-version compatibility)``"""
        s = self.solves_to
        frameworks = s.get("frameworks")
        parts = [f"{n} {v}" for n, v in frameworks.items()] if isinstance(frameworks, dict) else []
        parts.append(f"Python {s.get('python')}")
        if s.get("cuda"):
            parts.append(f"CUDA {s['cuda']} (driver >= {s.get('min_driver')}, {s.get('driver_mode')})")
        else:
            parts.append("CPU-only")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "relax": list(self.relax),
            "change": self.text,
            "set": [e.to_dict() for e in self.edits],
            "solves_to": self.solves_to,
        }


def find_ways_out(
    searches: Searches, conflicts: Sequence[frozenset[str]], fixed: Sequence[str]
) -> tuple[list[WayOut], list[frozenset[str]]]:
    """The cheapest verified ways out, and the further (overlapping) conflicts met on the way."""
    problem = searches.problem
    active = [r.id for r in problem.requirements if problem.on(r.id)]
    known = list(conflicts)
    first = itertools.islice(itertools.product(*(_members(problem, c, fixed) for c in known)), MAX_PRODUCT)
    pending = {frozenset(h) for h in first if h}
    ways: list[WayOut] = []
    tried: set[frozenset[str]] = set()
    cpu_only = frozenset(r for r in fixed if problem.on(r))
    last_resort = False
    while len(ways) < MAX_WAYS:
        low = searches.count >= searches.budget - RESERVE and not last_resort
        if low or not pending:
            if ways or not cpu_only or last_resort:
                break
            # Nothing short of it worked (or the budget ran low first): dropping the GPUs still
            # might, with what else it needs, on the budget kept for it.
            last_resort, pending = True, {cpu_only}
        if searches.spent:
            break
        h = min(pending, key=lambda s: _rank(problem, s))
        pending.discard(h)
        if h in tried or any(set(w.relax) <= h for w in ways):
            continue
        tried.add(h)
        result = searches.run(r for r in active if r not in h)
        if isinstance(result, Found):
            # A member that alone hits a known conflict is needed; test only the others. (Not
            # so beside CPU-only, which stands in for conflicts it is no member of.)
            beside = any(m.startswith("targets.gpu_arch.") for m in h)
            needed = set() if beside else {next(iter(h & c)) for c in known if len(h & c) == 1}
            smaller = [
                h - {m}
                for m in h - needed
                if len(h) > 1 and searches.feasible(r for r in active if r not in h - {m})
            ]
            if smaller:  # a member is not needed (CPU-only needs no driver upgrade): offer less
                pending |= set(smaller)
                continue
            way = _realize(searches, h, result)
            if way is not None:
                ways.append(way)
            continue
        if last_resort and len(h) <= len(cpu_only):
            # CPU-only and one more relaxation: tried directly, cheapest first (no time is left
            # for finding the next conflict).
            pending |= {h | {r} for r in active if r not in h and _cost(problem, r) is not None}
            continue
        if len(h) >= MAX_RELAX or result.gave_up or last_resort:
            continue
        rest_fixed = [r for r in fixed if r not in h]
        rest = [r for r in active if r not in h and r not in rest_fixed]
        core = minimal_conflict(searches, rest, rest_fixed) or minimal_conflict(
            searches, rest + rest_fixed, []
        )
        if not core:
            continue
        conflict = frozenset(core)
        if conflict not in known and len(known) < len(conflicts) + 2:
            known.append(conflict)
        pending |= {h | {m} for m in _members(problem, conflict, fixed)}
    ways.sort(key=lambda w: _rank(problem, frozenset(w.relax)))
    return ways, known[len(conflicts) :]


def _members(problem: Problem, conflict: frozenset[str], fixed: Sequence[str]) -> list[str]:
    """The requirements of ``conflict`` a way out may give up; CPU-only when none can."""
    members = [r for r in sorted(conflict) if _cost(problem, r) is not None]
    return members or [r for r in fixed if problem.on(r)]


def _cost(problem: Problem, rid: str) -> int | None:
    """How much a user gives up by relaxing ``rid``; None: not a way out at all."""
    if rid.startswith("frameworks."):
        return 1 if rid.endswith(".extras") else 0
    if rid.startswith("targets.gpus."):
        return 3 if len(problem.gpus) > 1 else None  # the only GPU: CPU-only is the honest answer
    if rid.startswith("targets.arch."):
        return 4
    if rid.startswith("targets.gpu_arch."):
        return 6
    costs = {"environment.python": 1, "blas.prefer": 1, "targets.driver": 2, "targets.forward_compat": 2}
    return costs.get(rid, 3)


def _rank(problem: Problem, h: frozenset[str]) -> tuple[int, int, tuple[str, ...]]:
    return (len(h), sum(_cost(problem, r) or 9 for r in h), tuple(sorted(h)))


def _realize(searches: Searches, h: frozenset[str], relaxed: Found) -> WayOut | None:
    """Edits that make relaxation ``h`` concrete, from the stack the relaxed search found; the
    edited profile is solved, and only a profile that solves makes a way out."""
    problem, matrix = searches.problem, searches.matrix
    profile, targets = problem.profile, problem.profile.targets
    edits: list[Edit] = []
    texts: list[str] = []
    dropped_gpus: list[str] = []
    dropped_platforms: list[str] = []
    cpu_only: list[str] = []
    for request in profile.frameworks:
        spec_off, extras_off = request.key in h, f"{request.key}.extras" in h
        if not (spec_off or extras_off):
            continue
        version = next(v for fw, v in relaxed.versions if fw.name == request.name)
        build = _gpu_build(problem, relaxed, request.name)
        extras = build.extras if extras_off and build is not None else request.extras
        key = framework_key(request.name, extras)
        if key != request.key:
            edits.append(Edit(request.key, None))
        edits.append(Edit(key, f"=={version}" if spec_off else str(request.spec) or "*"))
        if extras_off:
            texts.append(
                f"use {key.removeprefix('frameworks.')} instead of {request.key.removeprefix('frameworks.')}"
            )
    for rid in sorted(h):
        if rid == "environment.python":
            edits.append(Edit(rid, f"=={relaxed.python}"))
        elif rid == "blas.prefer":
            edits.append(Edit(rid, relaxed.blas))
            texts.append(f"use blas.prefer = '{relaxed.blas}'")
        elif rid == "targets.forward_compat":
            edits.append(Edit(rid, True))
            texts.append(
                "set targets.forward_compat = true (data-center GPUs; ships NVIDIA's cuda-compat package)"
            )
        elif rid == "targets.glibc":
            floors = [b.glibc for picks in relaxed.builds.values() for b in picks if b.glibc is not None]
            edits.append(Edit(rid, str(max(floors)) if floors else None))
            texts.append(f"nodes with glibc >= {max(floors)}" if floors else "drop targets.glibc")
        elif rid.startswith("targets.gpus."):
            dropped_gpus.append(rid.removeprefix("targets.gpus."))
        elif rid.startswith("targets.arch."):
            dropped_platforms.append(rid.removeprefix("targets.arch."))
        elif rid.startswith("targets.gpu_arch."):
            cpu_only.append(rid.removeprefix("targets.gpu_arch."))
    if dropped_gpus:
        kept = tuple(n for n in targets.gpus if resolve_gpu(n, matrix).name not in dropped_gpus)
        if not kept:
            return None  # dropping every GPU is running CPU-only, which is offered as that
        edits.append(Edit("targets.gpus", kept))
        texts += [f"drop {g} from targets.gpus (or give it its own profile)" for g in dropped_gpus]
    # the arches left after any drop: a CPU-only edit names only those (gpu_arch within arch)
    remaining = [p for p in targets.platforms if p not in dropped_platforms]
    if dropped_platforms:
        if not remaining:
            return None  # a profile needs at least one arch (targets.arch = [] is refused)
        edits.append(Edit("targets.arch", arch_names(remaining)))
        if targets.gpu_platforms is not None and not cpu_only:
            edits.append(
                Edit("targets.gpu_arch", arch_names(p for p in targets.gpu_platforms if p in remaining))
            )
        texts += [f"drop {p} from targets.arch (or give it its own profile)" for p in dropped_platforms]
    if cpu_only:
        gpu_platforms = [p for p in remaining if targets.has_gpus_on(p) and p not in cpu_only]
        edits.append(Edit("targets.gpu_arch", arch_names(gpu_platforms)))
        if gpu_platforms:
            texts += [f"run {p} CPU-only" for p in cpu_only]
        else:
            texts.append("run it CPU-only")
    # The relaxed stack runs natively on its own floor (updates and GPUs counted): no upgrade
    # need go higher.
    ceiling = relaxed.driver.min_driver if relaxed.driver is not None else None
    return _verify(searches, h, edits, texts, ceiling)


def _verify(
    searches: Searches, h: frozenset[str], edits: list[Edit], texts: list[str], ceiling: Version | None
) -> WayOut | None:
    problem, matrix = searches.problem, searches.matrix
    try:
        edited = make_problem(apply_edits(problem.profile, edits), matrix)
    except EnvctlError:
        return None
    floor: Version | None = None
    back: tuple[int, str] | None = None  # (branch, GPU): a driver past a GPU's last branch
    if "targets.driver" in h:
        lowest = lowest_driver(edited, matrix, searches, ceiling)
        if lowest is None:
            older = within_last_branch(edited, matrix, searches)
            if older is None:
                return None
            lowest, back = (older[0], older[1]), (older[2], older[3])
        floor = lowest[0]
        edits.append(Edit("targets.driver", str(floor)))
        edited = make_problem(apply_edits(problem.profile, edits), matrix)
    searches.count_search()
    found = search(edited, matrix)
    if not isinstance(found, Found):
        return None
    phrases = _framework_phrases(problem, h, found) + texts
    if floor is not None and found.cuda is not None and found.driver is not None:
        how = "" if found.driver.mode == "native" else f", by {found.driver.mode}"
        if back is not None:
            branch, gpu = back
            phrases.append(
                f"use a driver of branch R{branch} or older ({gpu} has none newer), >= {floor} "
                f"(CUDA {found.cuda.version}{how})"
            )
        else:
            phrases.append(f"upgrade the driver to >= {floor} (CUDA {found.cuda.version}{how})")
    elif floor is not None:  # every edit is said: a driver change no stack needs is still one
        phrases.append(f"set the driver to {floor}")
    if "environment.python" in h:
        phrases.append(f"allow Python {found.python}")
    return WayOut(
        relax=tuple(sorted(h, key=lambda r: (_cost(problem, r) or 9, r))),
        text=" and ".join(phrases),
        edits=tuple(edits),
        solves_to=summary(found),
        driver=floor,
        stack=found,
    )


def _framework_phrases(problem: Problem, h: frozenset[str], found: Found) -> list[str]:
    out = []
    for request in problem.profile.frameworks:
        if request.key not in h:
            continue
        version = next(v for fw, v in found.versions if fw.name == request.name)
        build = _gpu_build(problem, found, request.name) or _any_build(found, request.name)
        variant = f" ({build.variant})" if build is not None else ""
        out.append(f"use {request.name} {version}{variant}")
    return out


def _gpu_build(problem: Problem, found: Found, name: str) -> Build | None:
    """The CUDA build ``found`` picked for ``name`` (None where every platform runs CPU-only)."""
    for platform, picks in found.builds.items():
        if problem.gpu_platform(platform):
            build = next((b for b in picks if b.framework == name), None)
            if build is not None and build.is_cuda:
                return build
    return None


def _any_build(found: Found, name: str) -> Build | None:
    return next((b for picks in found.builds.values() for b in picks if b.framework == name), None)


def summary(found: Found) -> dict[str, object]:
    """What a stack solves to, for a way out's ``solves_to``."""
    frameworks = {}
    for fw, version in found.versions:
        variants = dict.fromkeys(
            b.variant for picks in found.builds.values() for b in picks if b.framework == fw.name
        )
        frameworks[fw.name] = f"{version} ({', '.join(variants)})"
    return {
        "frameworks": frameworks,
        "python": str(found.python),
        "cuda": str(found.cuda.version) if found.cuda else None,
        "min_driver": str(found.driver.min_driver) if found.driver else None,
        "driver_mode": found.driver.mode if found.driver else None,
    }
