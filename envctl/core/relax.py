"""Relaxing a profile's requirements: searches over subsets of them, minimal conflicting subsets,
and edits of the profile file that make one relaxation concrete (``targets.driver = "570.26"``).

Explanations run many searches over subsets of one problem's requirements, so ``Searches``
remembers each subset's answer and counts what it ran: an explanation stops exploring once it
has spent ``Searches.budget`` (a count, not a clock: the core has none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.driver_fit import driver_floors, last_branch
from envctl.core.matrix import Dotted, Matrix
from envctl.core.profile import ARCHES, FrameworkRequest, Profile
from envctl.core.solution import PLATFORMS
from envctl.core.solver import Found, NotFound, SearchMemo, search

#: searches one explanation may run, and combinations each may try: worst case a few hundred
#: ms (bench/solve.py). A search that reaches the limit proves nothing either way.
SEARCH_BUDGET = 90
COMBINATION_LIMIT = 2_000
FLOOR_LIMIT = 400  # for the floor an explanation states: past it, the steps fall back to reasons

TomlValue = str | bool | tuple[str, ...] | None


@dataclass(frozen=True)
class Edit:
    """One change to the profile file: set ``key`` (a TOML key path) to ``value``; None removes it."""

    key: str  # "frameworks.torch", "frameworks.jax[cuda12]", "targets.driver", "targets.gpus", ...
    value: TomlValue

    def to_dict(self) -> dict[str, object]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"key": self.key, "value": value}


class Searches:
    """``search`` over subsets of one problem's active requirements, each subset searched once."""

    def __init__(self, problem: Problem, matrix: Matrix, budget: int = SEARCH_BUDGET) -> None:
        self.problem = problem
        self.matrix = matrix
        self.budget = budget
        self.count = 0
        self._memo: dict[frozenset[str], Found | NotFound] = {}
        self._shared = SearchMemo()  # for this profile only (not for edited ones)

    @property
    def spent(self) -> bool:
        return self.count >= self.budget

    def run(self, keep: Iterable[str]) -> Found | NotFound:
        """The search with only ``keep`` of the problem's requirements in force."""
        key = frozenset(keep) & self.problem.active
        if key not in self._memo:
            self.count += 1
            problem = replace(self.problem, active=key)
            self._memo[key] = search(problem, self.matrix, COMBINATION_LIMIT, self._shared)
        return self._memo[key]

    def infeasible(self, keep: Iterable[str]) -> bool:
        """Proven to have no stack (a search that gave up proves nothing)."""
        result = self.run(keep)
        return isinstance(result, NotFound) and not result.gave_up

    def seed(self, keep: Iterable[str], result: Found | NotFound) -> None:
        """Record a search already run (the one that failed)."""
        self._memo[frozenset(keep) & self.problem.active] = result

    def feasible(self, keep: Iterable[str]) -> bool:
        return isinstance(self.run(keep), Found)

    def count_search(self) -> None:
        """Count a search run outside the memo (an edited profile's)."""
        self.count += 1


def minimal_conflict(searches: Searches, candidates: Sequence[str], fixed: Sequence[str]) -> list[str]:
    """Deletion filter: drop each candidate in turn and keep it out if the rest still conflict.
    The result, with ``fixed``, still conflicts and needs every one of its members to."""
    core = list(candidates)
    for req in candidates:
        trial = [r for r in core if r != req]
        if searches.infeasible([*trial, *fixed]):
            core = trial
    return core


def lowest_driver(
    problem: Problem,
    matrix: Matrix,
    searches: Searches,
    at_most: Version | None = None,
    limit: int = COMBINATION_LIMIT,
) -> tuple[Version, Found] | None:
    """The least driver upgrade under which ``problem`` solves, with the stack it then gets;
    None when there is none, or when a search gave up at ``limit`` (a floor it cannot vouch for
    is not stated).

    A newer driver runs everything an older one does (up to a GPU's last branch, which bounds
    the floors tried), so the floors are bisected (up to ``at_most``, a floor known to solve, when
    the caller has one); should the top floor fail for another reason, they are walked upwards."""
    current = problem.profile.targets.driver
    # A GPU past its architecture's last branch (Kepler: R470) takes no newer driver at all.
    infos = [matrix.cc_info(g.cc) for g in problem.active_gpus()]
    caps = [i.last_driver_branch for i in infos if i is not None and i.last_driver_branch is not None]
    floors = [
        f
        for f in driver_floors(matrix)
        if (current is None or f > current) and (not caps or f.major <= min(caps))
    ]
    if at_most is not None and at_most in floors:
        floors = floors[: floors.index(at_most) + 1]

    memo = SearchMemo()  # the attempts differ in the driver only

    class GaveUp(Exception):
        pass

    def attempt(floor: Version) -> Found | None:
        searches.count_search()
        targets = replace(problem.profile.targets, driver=floor)
        edited = replace(problem, profile=replace(problem.profile, targets=targets))
        result = search(edited, matrix, limit, memo)
        if isinstance(result, NotFound) and result.gave_up:
            raise GaveUp
        return result if isinstance(result, Found) else None

    if not floors:
        return None
    try:
        top = attempt(floors[-1])
        if top is None:
            for floor in floors[:-1]:
                if searches.spent:
                    return None
                found = attempt(floor)
                if found is not None:
                    return floor, found
            return None
        lo, hi, best = 0, len(floors) - 1, (floors[-1], top)
        while lo < hi:
            mid = (lo + hi) // 2
            found = attempt(floors[mid])
            if found is not None:
                hi, best = mid, (floors[mid], found)
            else:
                lo = mid + 1
    except GaveUp:
        return None
    return best


def framework_key(name: str, extras: Sequence[str]) -> str:
    """The profile key of a framework in its string form: ``frameworks.jax[cuda12]``."""
    return f"frameworks.{name}" + (f"[{','.join(extras)}]" if extras else "")


def arch_names(platforms: Iterable[str]) -> tuple[str, ...]:
    """conda subdirs as a profile writes them: ``linux-64`` -> ``x86_64``."""
    return tuple(PLATFORMS[p][0] if p in PLATFORMS else p for p in platforms)


def apply_edits(profile: Profile, edits: Sequence[Edit]) -> Profile:
    """``profile`` as it reads once ``edits`` are made to its file (in order).

    A framework entry that is removed and then set under another key (``jax[cuda13]`` ->
    ``jax[cuda12]``) keeps its place among the frameworks."""
    frameworks = list(profile.frameworks)
    python, blas, t = profile.python, profile.blas, profile.targets
    slot: int | None = None
    for e in edits:
        if e.key.startswith("frameworks."):
            at = next((i for i, f in enumerate(frameworks) if f.key == e.key), None)
            if e.value is None:
                if at is not None:
                    frameworks.pop(at)
                    slot = at
                continue
            name, _, rest = e.key.removeprefix("frameworks.").partition("[")
            extras = tuple(x for x in rest.rstrip("]").split(",") if x)
            spec = SpecifierSet("" if str(e.value) in ("", "*") else str(e.value))
            request = FrameworkRequest(name, spec, extras, e.key)
            if at is not None:
                frameworks[at] = request
            else:
                frameworks.insert(len(frameworks) if slot is None else slot, request)
        elif e.key == "environment.python":
            python = SpecifierSet(str(e.value or ""))
        elif e.key == "blas.prefer":
            blas = str(e.value)
        elif e.key == "targets.driver":
            t = replace(t, driver=None if e.value is None else Dotted(str(e.value)))
        elif e.key == "targets.glibc":
            t = replace(t, glibc=None if e.value is None else Version(str(e.value)))
        elif e.key == "targets.forward_compat":
            t = replace(t, forward_compat=bool(e.value))
        elif e.key in ("targets.gpus", "targets.arch", "targets.gpu_arch"):
            values = tuple(e.value) if isinstance(e.value, tuple) else ()
            if e.key == "targets.gpus":
                t = replace(t, gpus=values)
            elif e.key == "targets.arch":
                platforms = tuple(ARCHES[a] for a in values)
                keep = (
                    None if t.gpu_platforms is None else tuple(p for p in t.gpu_platforms if p in platforms)
                )
                t = replace(t, platforms=platforms, gpu_platforms=keep)
            else:
                t = replace(t, gpu_platforms=tuple(ARCHES[a] for a in values))
        else:
            raise ValueError(f"no profile key {e.key!r} to edit")
    return replace(profile, python=python, frameworks=tuple(frameworks), blas=blas, targets=t)


def within_last_branch(
    problem: Problem, matrix: Matrix, searches: Searches
) -> tuple[Version, Found, int, str] | None:
    """When the nodes' driver is past the last branch of a GPU's architecture (Kepler ends with
    R470), the least driver of that branch or older under which ``problem`` solves: (floor,
    stack, branch, GPU). An upgrade cannot help there; going back to the branch may."""
    capped = last_branch(problem, matrix)
    if capped is None:
        return None
    branch, gpu = capped
    top = Dotted(f"{branch}.999.99")  # any driver of the branch: its newest bounds what it runs
    searches.count_search()
    targets = replace(problem.profile.targets, driver=top)
    found = search(replace(problem, profile=replace(problem.profile, targets=targets)), matrix)
    if not isinstance(found, Found) or found.driver is None:
        return None
    return found.driver.min_driver, found, branch, gpu
