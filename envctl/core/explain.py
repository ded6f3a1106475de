"""Why no stack exists, in the spirit of PubGrub's error reports.

1. The smallest set of the profile's requirements that still conflict (a deletion-based minimal
   unsatisfiable subset: drop each requirement in turn; keep it only if the conflict needs it).
2. The concrete reasons behind the conflict, from a search with only that set in force.
3. The nearest ways out: relax one requirement of the set at a time and report what the solver
   would then choose ("use torch 2.10.0 (cu128)", "upgrade the driver to >= 580.65.06").
"""

from __future__ import annotations

from dataclasses import dataclass

from envctl.core.constraints import Problem, Requirement
from envctl.core.matrix import Dotted, Matrix
from envctl.core.reasons import Reason
from envctl.core.solver import Found, NotFound, search


@dataclass(frozen=True)
class Explanation:
    conflict: tuple[Requirement, ...]  # the minimal set of requirements that cannot hold together
    reasons: tuple[str, ...]  # concrete facts behind it, most relevant first
    ways_out: tuple[str, ...]  # one suggestion per requirement that can give

    @property
    def message(self) -> str:
        what = ", ".join(r.text for r in self.conflict) or "the profile"
        first = f": {self.reasons[0]}" if self.reasons else ""
        return f"no stack satisfies {what}{first}"

    @property
    def hint(self) -> str:
        return "; or ".join(self.ways_out) if self.ways_out else "widen the profile's ranges"

    def to_dict(self) -> dict[str, object]:
        return {
            "conflict": [{"key": r.id, "requirement": r.text} for r in self.conflict],
            "reasons": list(self.reasons),
            "ways_out": list(self.ways_out),
        }


def explain(problem: Problem, matrix: Matrix, failure: NotFound) -> Explanation:
    """Turn a failed search into the smallest conflict, its reasons and the nearest fixes."""
    active = [r.id for r in problem.requirements if problem.on(r.id)]
    # "Run it CPU-only" resolves nearly every GPU conflict, so GPU presence is held fixed unless
    # the conflict cannot be explained without it (e.g. no aarch64 CUDA build exists at all).
    gpu_presence = [r for r in active if r.startswith("targets.gpu_arch.")]
    core = _minimal_conflict(problem, matrix, [r for r in active if r not in gpu_presence], gpu_presence)
    if not core:
        core = _minimal_conflict(problem, matrix, active, [])
    conflict = tuple(r for r in problem.requirements if r.id in core)
    narrowed = search(_only(problem, core + gpu_presence), matrix)
    reasons = narrowed.reasons if isinstance(narrowed, NotFound) else failure.reasons
    # Any single requirement whose relaxation alone solves the profile is a way out, in or out
    # of the minimal set (one minimal set is not unique: allowing forward compatibility can be
    # as good a fix as dropping a GPU).
    others = [
        r for r in problem.requirements if r.id in active and r.id not in core and r.id not in gpu_presence
    ]
    return Explanation(conflict, _rank(reasons, set(core)), _ways_out(problem, matrix, (*conflict, *others)))


def _minimal_conflict(problem: Problem, matrix: Matrix, candidates: list[str], fixed: list[str]) -> list[str]:
    """Deletion filter: drop each candidate in turn and keep it out if the rest still conflict."""
    core = list(candidates)
    for req in candidates:
        trial = [r for r in core if r != req]
        if isinstance(search(_only(problem, trial + fixed), matrix), NotFound):
            core = trial
    return core


def _only(problem: Problem, keep: list[str]) -> Problem:
    return problem.without(*(r.id for r in problem.requirements if r.id not in keep))


def _rank(reasons: tuple[Reason, ...], core: set[str]) -> tuple[str, ...]:
    """Reasons blamed on the conflict first; range exclusions last (they are the user's own words)."""

    def score(r: Reason) -> tuple[int, int]:
        return (0 if r.blame and r.blame <= core else 1, 1 if r.text.startswith("excluded by") else 0)

    facts = [r for r in reasons if not r.text.startswith("excluded by")] or list(reasons)
    seen: dict[str, None] = {}
    for r in sorted(facts, key=score):
        seen.setdefault(f"{r.subject}: {r.text}", None)
    return tuple(list(seen)[:6])


def _ways_out(problem: Problem, matrix: Matrix, candidates: tuple[Requirement, ...]) -> tuple[str, ...]:
    """Single relaxations that solve the profile; failing those, pairs (e.g. two frameworks that
    must both move to meet on one CUDA)."""
    singles = list(candidates)
    ways = []
    for req in singles:
        found: Found | NotFound | None = None
        if req.id == "targets.driver":
            found = _lowest_driver(problem, matrix)
            older = _within_last_branch(problem, matrix) if found is None else None
            if older is not None:  # a GPU past its last branch needs an older driver, not a newer one
                ways.append(older)
                continue
        if found is None:
            found = search(problem.without(req.id), matrix)
        if isinstance(found, Found):
            ways.append(_suggest(problem, req, found))
    if ways:
        return tuple(w for w in ways if w)
    frameworks = [r for r in singles if r.id.startswith("frameworks.")]
    for i, a in enumerate(frameworks):
        for b in frameworks[i + 1 :]:
            pair = search(problem.without(a.id, b.id), matrix)
            if isinstance(pair, Found):
                ways.append(
                    f"{_suggest(problem, a, pair)} with {_suggest(problem, b, pair).removeprefix('use ')}"
                )
    return tuple(ways)


def _lowest_driver(problem: Problem, matrix: Matrix) -> Found | None:
    """The smallest driver upgrade that solves the profile (not the newest toolkit's floor)."""
    from dataclasses import replace

    current = problem.profile.targets.driver
    from envctl.core.driver_fit import driver_floors

    for floor in driver_floors(matrix):  # toolkit, update, minor-compat and GPU floors
        if current is not None and floor <= current:
            continue
        targets = replace(problem.profile.targets, driver=floor)
        found = search(replace(problem, profile=replace(problem.profile, targets=targets)), matrix)
        if isinstance(found, Found):
            return found
    return None


def _within_last_branch(problem: Problem, matrix: Matrix) -> str | None:
    """ "use a driver of branch R470 or older ...": the way out when the driver is past the last
    branch of a GPU's architecture (Kepler ends with R470), if a driver of that branch solves it."""
    from dataclasses import replace

    from envctl.core.driver_fit import last_branch

    capped = last_branch(problem, matrix)
    if capped is None:
        return None
    branch, gpu = capped
    top = Dotted(f"{branch}.999.99")  # any driver of the branch: the newest bounds what it runs
    targets = replace(problem.profile.targets, driver=top)
    found = search(replace(problem, profile=replace(problem.profile, targets=targets)), matrix)
    if not isinstance(found, Found) or found.driver is None or found.cuda is None:
        return None
    how = "" if found.driver.mode == "native" else f", by {found.driver.mode}"
    return (
        f"use a driver of branch R{branch} or older ({gpu} has none newer), >= {found.driver.min_driver} "
        f"(CUDA {found.cuda.version}{how})"
    )


def _suggest(problem: Problem, req: Requirement, found: Found) -> str:
    rid = req.id
    if rid.startswith("frameworks."):
        for fw, version in found.versions:
            if rid == next((f.key for f in problem.profile.frameworks if f.name == fw.name), None):
                variant = next(
                    (
                        picks[i].variant
                        for picks in found.builds.values()
                        for i, (f, _) in enumerate(found.versions)
                        if f is fw
                    ),
                    "",
                )
                return f"use {fw.name} {version}" + (f" ({variant})" if variant else "")
    if rid == "targets.driver" and found.driver is not None and found.cuda is not None:
        how = "" if found.driver.mode == "native" else f", by {found.driver.mode}"
        return f"upgrade the driver to >= {found.driver.min_driver} (CUDA {found.cuda.version}{how})"
    if rid.startswith("targets.gpus."):
        return f"drop {rid.removeprefix('targets.gpus.')} from targets.gpus (or give it its own profile)"
    if rid == "environment.python":
        return f"allow Python {found.python}"
    if rid.startswith("targets.gpu_arch."):
        platform = rid.removeprefix("targets.gpu_arch.")
        return f"run {platform} CPU-only (list the other arches in targets.gpu_arch)"
    if rid.startswith("targets.arch."):
        return f"drop {rid.removeprefix('targets.arch.')} from targets.arch (or give it its own profile)"
    if rid == "targets.glibc":
        return "nodes with a newer glibc (or an older framework)"
    if rid == "blas.prefer":
        return f"use blas.prefer = '{found.blas}'"
    if rid == "targets.forward_compat":
        return "set targets.forward_compat = true (data-center GPUs; ships NVIDIA's cuda-compat package)"
    return f"relax {req.text}"
