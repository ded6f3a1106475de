"""Ways out are solved before they are offered: a property over many unsatisfiable profiles on
the committed matrix (issue 11, class 13), and the edits that carry them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envctl.adapters.profile_file import parse_profile
from envctl.core.relax import Edit, apply_edits
from envctl.core.stack import solve
from envctl.errors import UnsatisfiableError

from .helpers import apply_toml_edits, check_explanation, profile, run

SPECS = {
    "torch": ["*", "==2.5.1", ">=2.11", "<2.7", "~=2.1.0", "==2.10.0", "==2.8.0", ">=2.4,<2.6"],
    "tensorflow": ["*", "==2.15.1", "==2.10.0", ">=2.16", "~=2.18.0", "==2.21.0", "<2.14"],
    "jax": ["*", ">=0.7", "==0.4.26", ">=0.8", "<0.5"],
}
JAX_KEYS = ["jax", "jax[cuda12]", "jax[cuda13]"]


@st.composite
def hard_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """Profiles that are often unsatisfiable: old and new releases, old drivers, odd GPUs."""
    frameworks: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(sorted(SPECS)), min_size=1, max_size=3, unique=True)):
        key = draw(st.sampled_from(JAX_KEYS)) if name == "jax" else name
        frameworks[key] = draw(st.sampled_from(SPECS[name]))
    targets: dict[str, Any] = {
        "gpus": draw(
            st.lists(
                st.sampled_from(["K80", "V100", "T4", "A100", "H100", "B200", "RTX 4090", "L4", "GH200"]),
                max_size=2,
                unique=True,
            )
        ),
        "arch": draw(st.sampled_from([["x86_64"], ["aarch64"], ["x86_64", "aarch64"]])),
    }
    driver = draw(st.sampled_from([None, "450.80.02", "470.57.02", "535.104.05", "550.54.15", "570.124.06"]))
    if driver:
        targets["driver"] = driver
    if draw(st.booleans()):
        targets["forward_compat"] = True
    glibc = draw(st.sampled_from([None, None, "2.17", "2.28"]))
    if glibc:
        targets["glibc"] = glibc
    data: dict[str, Any] = {"environment": {"name": "p"}, "frameworks": frameworks, "targets": targets}
    python = draw(st.sampled_from([None, None, "==3.8", "==3.10", ">=3.12", "<3.11", ">=3.14"]))
    if python:
        data["environment"]["python"] = python
    blas = draw(st.sampled_from([None, None, "mkl", "openblas"]))
    if blas:
        data["blas"] = {"prefer": blas}
    return data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=hard_profiles())
def test_every_way_out_solves(real_matrix, data):  # type: ignore[no-untyped-def]
    try:
        solve(parse_profile(data, "fuzz.toml"), real_matrix)
    except UnsatisfiableError as err:
        explanation = err.explanation
        assert explanation.conflicts
        check_explanation(real_matrix, data, explanation)
        if any(c.requirements for c in explanation.conflicts):
            assert explanation.fixes or err.hint == "widen the profile's ranges"


def test_extras_rename_keeps_the_frameworks_order(real_matrix):
    data = profile({"jax[cuda13]": "*", "torch": "*"}, gpus=["H100"], driver="550.54.15")
    with pytest.raises(UnsatisfiableError) as err:
        run(real_matrix, data)
    way = next(w for w in err.value.explanation.fixes if "frameworks.jax[cuda13].extras" in w.relax)
    edited = apply_edits(parse_profile(data, "test.toml"), way.edits)
    assert [f.key for f in edited.frameworks] == ["frameworks.jax[cuda12]", "frameworks.torch"]
    assert list(apply_toml_edits(data, [e.to_dict() for e in way.edits])["frameworks"]) == [
        "jax[cuda12]",
        "torch",
    ]


def test_edits_cover_every_key_a_way_out_sets():
    base = parse_profile(
        profile({"torch": "==2.5.1"}, gpus=["H100", "K80"], arch=["x86_64", "aarch64"], glibc="2.17"),
        "test.toml",
    )
    edited = apply_edits(
        base,
        [
            Edit("frameworks.torch", "==2.7.1"),
            Edit("environment.python", "==3.12"),
            Edit("targets.driver", "570.26"),
            Edit("targets.glibc", "2.28"),
            Edit("targets.gpus", ("H100",)),
            Edit("targets.arch", ("x86_64",)),
            Edit("targets.forward_compat", True),
            Edit("blas.prefer", "openblas"),
        ],
    )
    t = edited.targets
    assert (str(edited.frameworks[0].spec), str(edited.python), edited.blas) == (
        "==2.7.1",
        "==3.12",
        "openblas",
    )
    assert (str(t.driver), str(t.glibc), t.gpus, t.platforms, t.forward_compat) == (
        "570.26",
        "2.28",
        ("H100",),
        ("linux-64",),
        True,
    )
    cpu_only = apply_edits(base, [Edit("targets.gpu_arch", ())])
    assert not any(cpu_only.targets.has_gpus_on(p) for p in cpu_only.targets.platforms)
    with pytest.raises(ValueError):
        apply_edits(base, [Edit("targets.nope", "1")])


def test_no_way_out_drops_every_arch(real_matrix):
    # targets.arch = [] is refused (issue 9, finding 14): dropping both arches is no way out
    data = profile({"jax": "*"}, arch=["x86_64", "aarch64"], python="==3.8")
    with pytest.raises(UnsatisfiableError) as err:
        run(real_matrix, data)
    check_explanation(real_matrix, data, err.value.explanation)
    assert all(e.value for w in err.value.explanation.fixes for e in w.edits if e.key == "targets.arch")


def test_a_cpu_only_edit_names_no_arch_that_another_edit_dropped(real_matrix):  # type: ignore[no-untyped-def]
    """Found by the property above: dropping aarch64 (MKL has no wheels there) while running the
    rest CPU-only (K80) wrote gpu_arch = ["aarch64"], an arch no longer in arch."""
    data = {
        "environment": {"name": "p"},
        "frameworks": {"jax": "*"},
        "targets": {"gpus": ["K80"], "arch": ["x86_64", "aarch64"]},
        "blas": {"prefer": "mkl"},
    }
    test_every_way_out_solves.hypothesis.inner_test(real_matrix, data)  # type: ignore[attr-defined]
