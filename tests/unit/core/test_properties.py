"""Property: any profile, however arbitrary or mutated, gives a Solution or an EnvctlError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envctl.adapters.profile_file import parse_profile
from envctl.core.solution import Solution
from envctl.core.stack import solve
from envctl.errors import EnvctlError

specs = st.sampled_from(
    ["", "*", ">=2.4", "<2.6", "==2.5.1", ">=2.11", "==9", ">>1", ">=0.4.30", "~=3.11.0", "<3.10", 3, None]
)
gpus = st.sampled_from(
    ["H100", "K80", "B200", "RTX 4090", "Tesla T4", "L4", "sm_90", "cc:3.7", "cc:4.4", "nope", "", 7]
)
drivers = st.sampled_from(["450.80.02", "535.104.05", "550.54.15", "580.65.06", "999", "x.y", "", None])
arches = st.sampled_from(["x86_64", "aarch64", "sparc", "linux-64"])
junk = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


profiles = st.fixed_dictionaries(
    {
        "environment": st.one_of(
            st.fixed_dictionaries({"name": st.sampled_from(["env", "a b", ""]), "python": specs}).map(
                _drop_none
            ),
            junk,
        ),
        "frameworks": st.dictionaries(
            st.sampled_from(["torch", "tensorflow", "jax", "jax[cuda12]", "jax[cuda13]", "mxnet"]),
            st.one_of(specs, junk),
            max_size=3,
        ).map(_drop_none),
        "targets": st.fixed_dictionaries(
            {},
            optional={
                "gpus": st.lists(gpus, max_size=3),
                "driver": drivers,
                "arch": st.lists(arches, min_size=1, max_size=2),
                "gpu_arch": st.lists(arches, max_size=1),
                "cpu_vendor": st.sampled_from(["intel", "amd", "any", "via"]),
                "glibc": st.sampled_from(["2.17", "2.28", "2.35", "abc"]),
                "forward_compat": st.one_of(st.booleans(), junk),
                "extra": junk,
            },
        ).map(_drop_none),
        "blas": st.fixed_dictionaries({"prefer": st.sampled_from(["auto", "mkl", "openblas", "atlas"])}),
    },
    optional={
        "packages": st.fixed_dictionaries(
            {"pip": st.lists(st.sampled_from(["numpy", "x>=>", "scipy<2"]), max_size=2)}
        )
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=profiles)
def test_solver_never_raises_anything_but_envctl_errors(small_matrix, data):
    try:
        result = solve(parse_profile(data, "fuzz.toml"), small_matrix)
    except EnvctlError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(result, Solution)
    assert result.platforms and result.python
    for fw in result.frameworks:
        assert set(fw.builds) == set(result.platforms)


def _bundled() -> list[dict[str, Any]]:
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[3] / "profiles"
    return [tomllib.loads(p.read_text()) for p in sorted(root.glob("*.toml"))]


BUNDLED = _bundled()


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A bundled profile with a few keys deleted or replaced by junk or by other valid values."""
    import copy

    data = copy.deepcopy(draw(st.sampled_from(BUNDLED)))
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.sampled_from(sorted(data)))
        table = data[section]
        if not isinstance(table, dict) or not table:
            data[section] = draw(junk)
            continue
        key = draw(st.sampled_from(sorted(table)))
        action = draw(st.sampled_from(["delete", "junk", "spec", "gpu", "driver"]))
        if action == "delete":
            del table[key]
        elif action == "junk":
            table[key] = draw(junk)
        elif action == "spec":
            table[key] = draw(specs)
        elif action == "gpu":
            table[key] = draw(st.lists(gpus, max_size=2))
        else:
            table[key] = draw(drivers)
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_bundled_profiles_on_the_real_matrix(real_matrix, data):
    try:
        result = solve(parse_profile(data, "mutated.toml"), real_matrix)
    except EnvctlError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(result, Solution)
