from __future__ import annotations

import re
from typing import Any

from packaging.version import Version

from envctl.adapters.profile_file import parse_profile
from envctl.core.matrix import Matrix
from envctl.core.relax import apply_edits
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


def apply_toml_edits(data: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    """A way out's ``set`` list applied to a profile's TOML data, as a user would edit the file:
    ``{"key": "frameworks.jax[cuda12]", "value": "==0.7.2"}`` sets, ``"value": None`` removes.
    Written apart from envctl's own edits of a parsed profile, so that the two can disagree."""
    import copy

    out = copy.deepcopy(data)
    renamed_at: int | None = None  # a key removed then set under a new name keeps its place
    for edit in edits:
        section, _, key = edit["key"].partition(".")
        table = out.setdefault(section, {})
        if edit["value"] is None:
            renamed_at = list(table).index(key) if key in table else None
            table.pop(key, None)
        elif key in table or renamed_at is None:
            table[key] = edit["value"]
        else:
            items = list(table.items())
            items.insert(renamed_at, (key, edit["value"]))
            out[section] = dict(items)
            renamed_at = None
    return out


_RELEASE = re.compile(r"\b(torch|tensorflow|jax) (\d+\.\d+(?:\.\d+)*)\b")


def releases_named(text: str) -> list[tuple[str, str]]:
    """``torch 2.5.1``-style release mentions in an explanation's text."""
    return _RELEASE.findall(text)


def check_explanation(matrix: Matrix, data: dict[str, Any], explanation: Any) -> None:
    """What every explanation must hold, whatever the matrix says (issue 11, classes 9-13):
    - the headline speaks only of releases the profile's ranges allow (unless that range is
      itself in another conflict);
    - it names one driver floor, and a driver-only way out names the same one;
    - every way out, applied to the profile file, solves, and to what it says it solves to."""
    profile_ = parse_profile(data, "test.toml")
    ranges = {f.name: (f.spec, f.key) for f in profile_.frameworks}
    first = explanation.conflicts[0]
    elsewhere = {r.id for c in explanation.conflicts[1:] for r in c.requirements}
    headline = first.because[0] if first.because else ""
    for name, version in releases_named(headline):
        spec, key = ranges[name]
        if key not in elsewhere:
            assert Version(version) in spec, f"{headline!r} names {name} {version}, outside {spec}"
    floors = set(re.findall(r"driver >= (\d[\d.]*\d)", headline))
    assert len(floors) <= 1, headline
    for conflict in explanation.conflicts:
        if any("can give alone" in step for step in conflict.because):  # each member is a conflict
            ids = {r.id for r in conflict.requirements}
            with_gpus = [w for w in explanation.fixes if not any("gpu_arch" in r for r in w.relax)]
            assert all(ids <= set(way.relax) for way in with_gpus), conflict
    for way in explanation.fixes:
        edited = parse_profile(apply_toml_edits(data, [e.to_dict() for e in way.edits]), "test.toml")
        assert apply_edits(profile_, way.edits) == edited, way.edits  # the file and envctl agree
        solution = solve(edited, matrix)  # raises if the way out fails
        for fw in solution.frameworks:
            assert way.solves_to["frameworks"][fw.name].startswith(fw.version + " "), (way.text, fw)
        if (
            way.relax == ("targets.driver",)
            and floors
            and "targets.driver" in {r.id for r in first.requirements}
        ):
            assert floors == {str(way.driver)}, (headline, way.text)
