"""Why no stack exists, in the spirit of PubGrub's error reports (uv's are the bar to beat).

1. Conflicts: a smallest set of the profile's requirements that cannot hold together (a deletion
   filter over them), then again without that set, until what is left solves: every independent
   conflict is reported, since relaxing what one names cannot fix another.
2. For each conflict, the facts that clash, as a short chain of because-steps about the releases
   the profile asks for (``because``).
3. Ways out: sets of relaxations that hit every conflict, each made into edits of the profile and
   solved before it is offered (``ways_out``). Conflicts met on the way that share requirements
   with the first ones are reported too, marked as not independent.

GPU presence is held fixed while conflicts are looked for: "run it CPU-only" resolves nearly every
GPU conflict, so it is blamed only when nothing else explains one (no CUDA build for a platform).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from envctl.core.because import MAX_STEPS, Floor, chain, either
from envctl.core.constraints import Problem, Requirement
from envctl.core.matrix import Matrix
from envctl.core.reasons import LIBRARY, NO_COMMON_CUDA
from envctl.core.relax import FLOOR_LIMIT, Searches, lowest_driver, minimal_conflict
from envctl.core.solver import Found, NotFound
from envctl.core.ways_out import MAX_CONFLICTS, WayOut, find_ways_out


@dataclass(frozen=True)
class Conflict:
    """Requirements that cannot hold together, and why (the clashing fact first)."""

    requirements: tuple[Requirement, ...]
    because: tuple[str, ...]
    independent: bool = True  # shares no requirement with the conflicts before it

    @property
    def names(self) -> str:
        return " + ".join(r.text for r in self.requirements) or "the profile"

    def to_dict(self) -> dict[str, object]:
        return {
            "requirements": [{"key": r.id, "requirement": r.text} for r in self.requirements],
            "because": list(self.because),
            "independent": self.independent,
        }


@dataclass(frozen=True)
class Explanation:
    conflicts: tuple[Conflict, ...]
    fixes: tuple[WayOut, ...]  # each solved: applying its edits to the profile gives a stack
    searches: int = field(default=0, compare=False)  # what it cost (bench/solve.py reports it)

    @property
    def conflict(self) -> tuple[Requirement, ...]:
        """The first conflict's requirements."""
        return self.conflicts[0].requirements if self.conflicts else ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(step for c in self.conflicts for step in c.because)

    @property
    def ways_out(self) -> tuple[str, ...]:
        return tuple(w.text for w in self.fixes)

    @property
    def message(self) -> str:
        if not self.conflicts:
            return "no stack satisfies the profile"
        first = self.conflicts[0]
        text = f"no stack satisfies {first.names}" + (f": {first.because[0]}" if first.because else "")
        more = self.conflicts[1:]
        if more:
            text += f" (and {len(more)} more conflict{'s' if len(more) > 1 else ''}: "
            text += "; ".join(c.names for c in more) + ")"
        return text

    @property
    def hint(self) -> str:
        if self.fixes:
            return "; or ".join(self.ways_out)
        if self.conflicts and not self.conflicts[0].requirements:
            return "no releases of these frameworks fit together here: give each its own profile"
        return "widen the profile's ranges"

    def to_dict(self) -> dict[str, object]:
        return {
            "conflict": [{"key": r.id, "requirement": r.text} for r in self.conflict],
            "reasons": list(self.reasons),
            "ways_out": list(self.ways_out),
            "conflicts": [c.to_dict() for c in self.conflicts],
            "fixes": [w.to_dict() for w in self.fixes],
        }


def explain(problem: Problem, matrix: Matrix, failure: NotFound) -> Explanation:
    """Turn a failed search into its conflicts, their facts, and verified ways out."""
    searches = Searches(problem, matrix)
    searches.seed(problem.active, failure)
    active = [r.id for r in problem.requirements if problem.on(r.id)]
    fixed = [r for r in active if r.startswith("targets.gpu_arch.")]
    independent = _independent_conflicts(searches, active, fixed)
    fixed = [r for r in fixed if not any(r in c for c, _ in independent)]
    fixes, overlapping = find_ways_out(searches, [c for c, _ in independent], fixed)
    found, merged = _merge_ranges(searches, independent)
    every = found + [(c, fixed) for c in overlapping]
    names = {r.id: r.text for r in problem.requirements}
    conflicts = []
    for i, (conflict, held) in enumerate(every):
        others = [c for j, (c, _) in enumerate(every) if j != i]
        focus = _focus(searches, active, conflict, held, others)
        result = searches.run(focus)
        reasons = result.reasons if isinstance(result, NotFound) else failure.reasons
        floor = _floor(searches, [focus, [*conflict, *held]], fixes) if "targets.driver" in conflict else None
        focus_problem = replace(problem, active=frozenset(focus))
        steps = list(chain(focus_problem, matrix, conflict, names, reasons, floor))
        note = (
            _alone(problem, conflict, names)
            if conflict == merged
            else either(focus_problem, conflict, reasons)
        )
        if note:
            steps.insert(1, note)
        steps = steps[:MAX_STEPS]
        conflicts.append(
            Conflict(
                tuple(r for r in problem.requirements if r.id in conflict),
                tuple(steps),
                independent=i < len(found),
            )
        )
    if not conflicts:  # the search gave up, or nothing can be relaxed: say what it saw
        conflicts.append(Conflict((), chain(problem, matrix, frozenset(), names, failure.reasons, None)))
    return Explanation(tuple(conflicts), tuple(fixes), searches.count)


def _ranges_only(conflict: frozenset[str]) -> bool:
    return all(r.startswith("frameworks.") for r in conflict)


def _merge_ranges(
    searches: Searches, found: list[tuple[frozenset[str], list[str]]]
) -> tuple[list[tuple[frozenset[str], list[str]]], frozenset[str] | None]:
    """Conflicts of one framework range each that clash with the other frameworks (``tensorflow
    ==2.15.1`` fits no torch release, and ``torch ==2.5.1`` no tensorflow release) are one clash
    seen from each side: report them as one conflict (returned second). Ways out still take them
    one by one, so both ranges move. A range that fails on its own (no build for a platform)
    stays a conflict of its own."""
    single = [
        (c, held)
        for c, held in found
        if len(c) == 1 and _ranges_only(c) and not _extras(c) and _with_others(searches, [*c, *held])
    ]
    if len(single) < 2:
        return found, None
    merged = frozenset().union(*(c for c, _ in single))
    held = sorted({r for _, h in single for r in h})
    rest = [(c, h) for c, h in found if (c, h) not in single]
    return [(merged, held), *rest], merged


def _with_others(searches: Searches, keep: list[str]) -> bool:
    """Whether the conflict fails only once frameworks are combined (a shared CUDA, library or
    Python), not on a release of its own."""
    result = searches.run(keep)
    return isinstance(result, NotFound) and any(
        r.kind in (NO_COMMON_CUDA, LIBRARY) or " + " in r.subject or r.subject == "python"
        for r in result.reasons
    )


def _extras(conflict: frozenset[str]) -> bool:
    return any(r.endswith(".extras") for r in conflict)


def _alone(problem: Problem, conflict: frozenset[str], names: dict[str, str]) -> str:
    """For a merged conflict of ranges: each range fits no release of the other frameworks."""
    asked = [r for r in conflict if r.startswith("frameworks.")]
    parts = []
    for request in problem.profile.frameworks:
        if request.key in asked:
            others = [f.name for f in problem.profile.frameworks if f.key != request.key]
            parts.append(f"{names[request.key]} fits no {' or '.join(others)} release")
    return f"{'neither' if len(parts) == 2 else 'none'} can give alone: " + ", and ".join(parts)


def _independent_conflicts(
    searches: Searches, active: list[str], fixed: list[str]
) -> list[tuple[frozenset[str], list[str]]]:
    """Disjoint minimal conflicts, each with the GPU-presence requirements held while found."""
    free = [r for r in active if r not in fixed]
    held = list(fixed)
    out: list[tuple[frozenset[str], list[str]]] = []
    while len(out) < MAX_CONFLICTS and not searches.spent and searches.infeasible(free + held):
        core = minimal_conflict(searches, free, held)
        if not core:  # only GPU presence explains it: no CUDA build for a platform at all
            core = minimal_conflict(searches, free + held, [])
            if not core:
                break
            held = [r for r in held if r not in core]
        out.append((frozenset(core), list(held)))
        free = [r for r in free if r not in core]
    return out


def _focus(
    searches: Searches,
    active: list[str],
    conflict: frozenset[str],
    held: list[str],
    others: list[frozenset[str]],
) -> list[str]:
    """The conflict with the profile's framework ranges (and extras) in force, so that its facts
    speak of the releases the profile asks for, never of ones its ranges exclude; a range that
    another conflict names stays out (that conflict's facts would crowd this one's out)."""
    ranges = [r for r in active if r.startswith("frameworks.") and r not in conflict]
    base = {*conflict, *held}
    crowding = {r for c in others if c <= base | set(ranges) for r in c}
    focus = [*sorted(conflict), *held, *(r for r in ranges if r not in crowding)]
    return focus if searches.infeasible(focus) else [*sorted(conflict), *held]


def _floor(
    searches: Searches, tries: list[list[str]], fixes: tuple[WayOut, ...] | list[WayOut]
) -> Floor | None:
    """The least driver that solves the conflict: a way out's that upgrades the driver when there
    is one (a message names one floor, the one that fixes it), else the focus's (with the
    profile's ranges, so that the stack it names is one the profile asks for), else the bare
    conflict's."""
    driver = searches.problem.profile.targets.driver
    for way in sorted(fixes, key=lambda w: len(w.relax)):
        upgrade = way.driver is not None and (driver is None or way.driver > driver)
        if "targets.driver" in way.relax and upgrade and way.driver is not None and way.stack is not None:
            # Speak of the focus's frameworks, less what this way out changes.
            within = replace(searches.problem, active=frozenset(tries[0]) - set(way.relax))
            return Floor(way.driver, way.stack, within)
    for keep in tries:
        if searches.spent:
            return None  # the steps then state the solver's own reasons
        unbound = searches.run(r for r in keep if r != "targets.driver")
        if not isinstance(unbound, Found) or unbound.driver is None:
            continue
        within = replace(searches.problem, active=frozenset(keep))
        # Without the driver the stack runs natively on its own floor: no need to look higher.
        lowest = lowest_driver(within, searches.matrix, searches, unbound.driver.min_driver, FLOOR_LIMIT)
        if lowest is not None:
            return Floor(*lowest, within)
    return None
