"""Explanations of unsatisfiable profiles on the committed matrix (issue 11, classes 9-13).

Each scenario names the facts behind its expectation, with the source compat_matrix/sources.toml
gives for them. The table asserts structure and named facts, not whole messages, so that new
rows in the matrix do not break it: the conflicts reported (each as its set of requirement ids),
the clashing facts among their because-steps, and ways out that must (or must not) be offered.
Every scenario also passes ``check_explanation``: the headline names only releases the profile
asks for, one driver floor, and every way out solves once applied to the profile file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from envctl.errors import UnsatisfiableError

from .helpers import check_explanation, profile, run

TORCH = "frameworks.torch"
TF = "frameworks.tensorflow"
JAX12 = "frameworks.jax[cuda12]"
JAX13 = "frameworks.jax[cuda13]"
DRIVER = "targets.driver"
FC = "targets.forward_compat"
PY = "environment.python"


@dataclass(frozen=True)
class Scenario:
    id: str
    data: dict[str, Any]
    conflicts: tuple[frozenset[str], ...] = ()  # each must be reported, exactly
    facts: tuple[str, ...] = ()  # each must appear among the because-steps
    ways: tuple[frozenset[str], ...] = ()  # each must be offered (its relax set, exactly)
    not_ways: tuple[frozenset[str], ...] = ()  # none of these may be offered
    first: frozenset[str] = field(default_factory=frozenset)  # ids the headline conflict holds


def s(id: str, data: dict[str, Any], **kw: Any) -> Scenario:
    kw = {
        k: tuple(frozenset(x) for x in v) if k in ("conflicts", "ways", "not_ways") else v
        for k, v in kw.items()
    }
    if "first" in kw:
        kw["first"] = frozenset(kw["first"])
    return Scenario(id, data, **kw)


SCENARIOS = [
    # --- a GPU the framework's builds cannot run -------------------------------------------
    # CUDA-RN 2.6.2 / LLVM: CUDA 12 dropped Kepler, so K80 (CC 3.7, GPUS) is last targeted by
    # CUDA 11.8; PT-REL: torch >= 2.8 ships cu126 and newer only, 2.7.1 still has cu118.
    s(
        "k80-torch-new",
        profile({"torch": ">=2.10"}, gpus=["K80"]),
        conflicts=[{TORCH, "targets.gpus.K80"}],
        facts=("CUDA after 11.8 no longer targets K80",),
        ways=[{TORCH}],
    ),
    s(
        "k80-torch-28",
        profile({"torch": "==2.8.0"}, gpus=["Tesla K80"]),
        conflicts=[{TORCH, "targets.gpus.K80"}],
        facts=("11.8", "K80"),
        ways=[{TORCH}],
    ),
    # JAX-INSTALL: jax's CUDA 12 plugins need CUDA 12 (no Kepler) and CC >= 5.2. The only GPU
    # cannot give, so running it CPU-only is the one way out.
    s(
        "k80-jax",
        profile({"jax[cuda12]": "*"}, gpus=["K80"]),
        conflicts=[{"targets.gpus.K80"}],
        facts=("K80",),
        ways=[{"targets.gpu_arch.linux-64"}],
    ),
    s(
        "k80-h100-jax",
        profile({"jax[cuda12]": "*"}, gpus=["K80", "H100"]),
        conflicts=[{"targets.gpus.K80"}],
        ways=[{"targets.gpus.K80"}],
    ),
    # PT-REL / PyPI:libtorch_python.so arch lists: sm_100 (B200, GPUS CC 10.0) from 2.7 cu128;
    # 2.6 and older end at sm_90 without PTX.
    s(
        "b200-old-torch",
        profile({"torch": "<2.7"}, gpus=["B200"]),
        conflicts=[{TORCH, "targets.gpus.B200"}],
        facts=("no kernels for B200",),
        ways=[{TORCH}],
    ),
    s(
        "b200-h100-old-torch",
        profile({"torch": "<2.7"}, gpus=["B200", "H100"]),
        conflicts=[{TORCH, "targets.gpus.B200"}],
        ways=[{TORCH}, {"targets.gpus.B200"}],
    ),
    # CUDA-RN 13.0: CUDA 13 drops Volta (V100, CC 7.0; last CUDA 12.9); the jax[cuda13] extra
    # pulls CUDA 13 plugins only (PyPI:jax-cuda13-plugin METADATA). The extra can give.
    s(
        "v100-jax13",
        profile({"jax[cuda13]": "*"}, gpus=["V100"]),
        conflicts=[{f"{JAX13}.extras", "targets.gpus.V100"}],
        facts=("V100",),
        ways=[{f"{JAX13}.extras"}],
    ),
    s(
        "k80-a100-torch-new",
        profile({"torch": ">=2.10"}, gpus=["K80", "A100"]),
        conflicts=[{TORCH, "targets.gpus.K80"}],
        ways=[{TORCH}, {"targets.gpus.K80"}],
    ),
    # --- the driver -----------------------------------------------------------------------
    # CUDA-RN tables 2 and 3: torch >= 2.11 builds need CUDA >= 12.6; driver 470 runs <= 11.4
    # natively and 11.x by minor-version compatibility; 12.x needs >= 525.60.13 that way.
    s(
        "a100-torch-new-470",
        profile({"torch": ">=2.11"}, gpus=["A100"], driver="470.57.02"),
        first={TORCH, DRIVER},
        facts=("525.60.13", "470.57.02 runs CUDA <= 11.4"),
        ways=[{TORCH}, {DRIVER}, {FC}],
    ),
    # TF-TESTED, PyPI:build_info.py: TF 2.10 targets sm_35..sm_75 + compute_80, so A100 (CC 8.0)
    # runs it by PTX JIT, which minor-version compatibility does not allow (COMPAT): CUDA 11.2
    # natively needs >= 460.27.03 (CUDA-RN table 3), not the 11.x floor 450.80.02.
    s(
        "a100-tf210-450",
        profile({"tensorflow": "==2.10.0"}, gpus=["A100"], driver="450.80.02"),
        facts=("PTX JIT", "minor-version compatibility does not allow", "460.27.03"),
        ways=[{DRIVER}],
    ),
    # TF 2.16/2.17 (cu123) end at compute_90 PTX for H100: CUDA 12.3 natively needs 545.23.06.
    s(
        "h100-tf216-535",
        profile({"tensorflow": ">=2.16"}, gpus=["H100"], driver="535.104.05"),
        facts=("PTX JIT", "545.23.06"),
        ways=[{DRIVER}],
    ),
    # TF 2.18 is cu125 (PyPI METADATA): 12.5 natively needs a 555.42 driver (CUDA-RN table 3;
    # the update release its wheels carry may need a later one of that branch).
    s(
        "h100-tf218-550",
        profile({"tensorflow": "~=2.18.0"}, gpus=["H100"], driver="550.54.15"),
        facts=("PTX JIT", "needs driver >= 555.42."),
        ways=[{DRIVER}, {TF}],
    ),
    # JAX's cuda13 plugins need CUDA 13; 13.x minor-version compatibility starts at 580.65.06
    # (CUDA-RN table 2). H100 is a data-center GPU, so the cuda-compat package is a way out
    # (COMPAT), and so is the cuda12 extra.
    s(
        "h100-jax13-550",
        profile({"jax[cuda13]": "*"}, gpus=["H100"], driver="550.54.15"),
        conflicts=[{f"{JAX13}.extras", DRIVER, FC}],
        facts=("580.65.06",),
        ways=[{f"{JAX13}.extras"}, {DRIVER}, {FC}],
    ),
    # COMPAT: forward compatibility is for data-center GPUs; RTX 4090 (GPUS) is not one.
    s(
        "rtx4090-jax13-550",
        profile({"jax[cuda13]": "*"}, gpus=["RTX 4090"], driver="550.54.15"),
        facts=("580.65.06",),
        ways=[{f"{JAX13}.extras"}, {DRIVER}],
        not_ways=[{FC}],
    ),
    # CUDA-RN table 2: 12.x minor-version compatibility from 525.60.13; jax's plugins need 12.x.
    s(
        "a100-jax12-470",
        profile({"jax[cuda12]": "*"}, gpus=["A100"], driver="470.57.02"),
        conflicts=[{DRIVER, FC}],
        facts=("525.60.13",),
        ways=[{DRIVER}, {FC}],
    ),
    # TF 2.16 has sm_80 SASS (build_info.py), so A100 runs CUDA 12.3 by minor-version
    # compatibility from 525.60.13; 450.80.02 is below it; A100 may use cuda-compat (COMPAT).
    s(
        "a100-tf216-450",
        profile({"tensorflow": ">=2.16"}, gpus=["A100"], driver="450.80.02"),
        first={DRIVER, FC},
        facts=("525.60.13",),
        ways=[{DRIVER}, {FC}],
    ),
    # Two independent conflicts: K80 runs no jax build, and driver 470 runs no CUDA 12.
    s(
        "k80-jax-470",
        profile({"jax[cuda12]": "*"}, gpus=["K80"], driver="470.57.02"),
        conflicts=[{"targets.gpus.K80"}, {DRIVER, FC}],
        ways=[{"targets.gpu_arch.linux-64"}],
    ),
    # ... and with an H100 beside it, the ways out need two relaxations (class 12).
    s(
        "k80-h100-jax-470",
        profile({"jax[cuda12]": "*"}, gpus=["K80", "H100"], driver="470.57.02"),
        conflicts=[{"targets.gpus.K80"}, {DRIVER, FC}],
        ways=[{"targets.gpus.K80", DRIVER}, {"targets.gpus.K80", FC}],
    ),
    # --- Python ---------------------------------------------------------------------------
    # PyPI wheel tags: torch 2.5.1 ships cp39..cp313.
    s(
        "torch251-py38",
        profile({"torch": "==2.5.1"}, gpus=["H100"], python="==3.8"),
        conflicts=[{PY, TORCH}],
        facts=("3.9 … 3.13", "==3.8"),
        ways=[{PY}, {TORCH}],
    ),
    # PyPI wheel tags: torch 2.1 ships cp38..cp311.
    s(
        "torch21-py312",
        profile({"torch": "~=2.1.0"}, python="==3.12"),
        conflicts=[{PY, TORCH}],
        facts=("3.8 … 3.11",),
        ways=[{PY}, {TORCH}],
    ),
    # PyPI: jax >= 0.7 requires Python >= 3.11.
    s(
        "jax07-py310",
        profile({"jax[cuda12]": ">=0.7"}, gpus=["A100"], python="==3.10"),
        conflicts=[{PY, JAX12}],
        facts=("==3.10",),
        ways=[{PY}, {JAX12}],
    ),
    # PyPI wheel tags: TensorFlow 2.10 ships cp37..cp310.
    s(
        "tf210-py311-aarch64",
        profile({"tensorflow": "==2.10.0"}, arch=["aarch64"], python="==3.11"),
        conflicts=[{PY, TF}],
        facts=("3.7 … 3.10",),
    ),
    # --- glibc and BLAS -------------------------------------------------------------------
    # PyPI wheel tags: torch >= 2.6 x86_64 wheels are manylinux_2_28.
    s(
        "torch-new-glibc217",
        profile({"torch": ">=2.11"}, glibc="2.17"),
        conflicts=[{TORCH, "targets.glibc"}],
        facts=("glibc >= 2.28",),
        ways=[{TORCH}, {"targets.glibc"}],
    ),
    # MKL: oneMKL wheels exist for x86_64 only, manylinux_2_28.
    s(
        "mkl-aarch64",
        profile({"torch": "*"}, arch=["aarch64"], blas="mkl"),
        conflicts=[{"blas.prefer"}],
        facts=("MKL has no wheels for linux-aarch64",),
        ways=[{"blas.prefer"}],
    ),
    s(
        "mkl-glibc217",
        profile({"torch": "==2.5.1"}, glibc="2.17", blas="mkl"),
        facts=("MKL wheels need glibc >= 2.28",),
        ways=[{"blas.prefer"}],
    ),
    # --- platforms ------------------------------------------------------------------------
    # TensorFlow's aarch64 wheels are CPU-only (build_info.py: is_cuda_build False).
    s(
        "tf-gh200",
        profile({"tensorflow": "*"}, gpus=["GH200"], arch=["aarch64"]),
        facts=("no build for linux-aarch64 with CUDA",),
        ways=[{"targets.gpu_arch.linux-aarch64"}],
    ),
    # PT-PREV: torch 2.1 has no CUDA wheels for aarch64.
    s(
        "torch21-gh200",
        profile({"torch": "==2.1.2"}, gpus=["GH200"], arch=["aarch64"]),
        conflicts=[{TORCH}],
        facts=("torch 2.1.2", "linux-aarch64"),
        ways=[{TORCH}],
    ),
    s(
        "torch21-multiarch",
        profile({"torch": "==2.1.2"}, gpus=["H100", "GH200"], arch=["x86_64", "aarch64"]),
        facts=("linux-aarch64",),
        ways=[{TORCH}, {"targets.arch.linux-aarch64"}],
    ),
    # PyPI: jax 0.4.26's CUDA plugin has no aarch64 wheel (0.4.27 is the first).
    s(
        "jax0426-gh200",
        profile({"jax[cuda12]": "==0.4.26"}, gpus=["GH200"], arch=["aarch64"]),
        conflicts=[{JAX12}],
        facts=("jax 0.4.26", "linux-aarch64"),
        ways=[{JAX12}],
    ),
    s(
        "tf-multiarch-gpus",
        profile({"tensorflow": "*"}, gpus=["H100", "GH200"], arch=["x86_64", "aarch64"]),
        ways=[{"targets.arch.linux-aarch64"}],
    ),
    # --- frameworks that must share CUDA and its libraries --------------------------------
    # PyPI METADATA: torch 2.5.1 pins CUDA 12.4 / cuDNN 9.1.0.70 (cu124; 12.1 and 11.8 on its
    # index), TensorFlow 2.15.1 pins CUDA 12.2 / cuDNN 8.9.4.25: neither range can give alone.
    s(
        "torch251-tf2151",
        profile({"torch": "==2.5.1", "tensorflow": "==2.15.1"}, gpus=["H100"]),
        conflicts=[{TORCH, TF}],
        facts=("12.2", "12.4", "9.1.0.70", "8.9.4.25", "neither can give alone"),
        ways=[{TORCH, TF}],
        not_ways=[{TORCH}, {TF}],
    ),
    # PyPI METADATA: TensorFlow 2.18 pins CUDA 12.5 and cuDNN 9.3.0.75.
    s(
        "torch251-tf218",
        profile({"torch": "==2.5.1", "tensorflow": "~=2.18.0"}, gpus=["L4"]),
        facts=("no CUDA toolkit fits both", "12.5", "9.3.0.75"),
        ways=[{TORCH, TF}],
    ),
    # PyPI METADATA: torch 2.10.0 (cu128) pins nvidia-nccl-cu12 2.27.5; TensorFlow 2.21 needs
    # >= 2.27.7.
    s(
        "torch210-tf221-nccl",
        profile({"torch": "==2.10.0", "tensorflow": "==2.21.0"}, gpus=["H100"]),
        conflicts=[{TORCH, TF}],
        facts=("NCCL", "2.27.5", "2.27.7"),
        ways=[{TORCH}, {TF}],
    ),
    # PyPI METADATA: torch 2.5.1 is built for CUDA 11.8/12.1/12.4; from jax 0.4.36 the plugins
    # need nvidia-cuda-nvcc-cu12 >= 12.6.85 (plugin_setup.py), so jax >= 0.7 needs CUDA >= 12.6.
    s(
        "torch251-jax07-cuda",
        profile({"torch": "==2.5.1", "jax[cuda12]": ">=0.7"}, gpus=["H100"]),
        conflicts=[{TORCH, JAX12}],
        facts=("no CUDA toolkit fits both", "12.6"),
        ways=[{TORCH}, {JAX12}],
    ),
    # PyPI METADATA: torch 2.4.1 pins cuDNN 9.1.0.70 (cu121, and cu124 on its index); jax
    # 0.4.26..0.4.28's plugins need cuDNN 8.9 (< 9.0): they share CUDA 12.1 but no cuDNN.
    s(
        "torch241-jax0426-cudnn",
        profile({"torch": "==2.4.1", "jax[cuda12]": ">=0.4.26,<0.4.29"}, gpus=["H100"]),
        conflicts=[{TORCH, JAX12}],
        facts=("cuDNN", "9.1.0.70", "<9.0"),
        ways=[{TORCH}, {JAX12}],
    ),
    # PyPI METADATA: torch 2.1 pins cuDNN 8.9.2.26; jax >= 0.4.29's plugins need cuDNN 9.
    s(
        "torch21-jax0430-cudnn",
        profile({"torch": "~=2.1.0", "jax[cuda12]": ">=0.4.30"}, gpus=["A100"]),
        conflicts=[{TORCH, JAX12}],
        facts=("8.9.2.26",),
    ),
    # Three frameworks, each exact: TF 2.15.1's CUDA 12.2 is in no torch 2.5.1 build.
    s(
        "torch-tf-jax",
        profile({"torch": "==2.5.1", "tensorflow": "==2.15.1", "jax[cuda12]": "==0.4.26"}, gpus=["A100"]),
        facts=("12.2", "no CUDA toolkit fits all"),
        ways=[{TORCH, TF, JAX12}],
    ),
    # TF 2.10 is CUDA 11.2 only, no torch release is (PT-PREV); separately, torch >= 2.11 with
    # TensorFlow on H100 needs CUDA >= 12.6 natively (TF reaches H100 by PTX JIT) above 535.
    s(
        "two-independent",
        profile(
            {"torch": ">=2.11", "tensorflow": "==2.10.0"}, gpus=["H100"], driver="535.104.05", python=">=3.12"
        ),
        conflicts=[{TF}],
        facts=("11.2", "torch 2.11.0"),
    ),
    # --- extras ---------------------------------------------------------------------------
    # The cuda13 extra needs CUDA 13 (driver >= 580.65.06); the cuda12 extra runs on 535 by 12.x
    # minor-version compatibility (CUDA-RN table 2).
    s(
        "jax13-extra-535",
        profile({"jax[cuda13]": ">=0.8"}, gpus=["RTX 4090"], driver="535.104.05"),
        ways=[{f"{JAX13}.extras"}, {DRIVER}],
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=lambda c: c.id)
def test_explanation(real_matrix, case):  # type: ignore[no-untyped-def]
    with pytest.raises(UnsatisfiableError) as err:
        run(real_matrix, case.data)
    explanation = err.value.explanation
    reported = [frozenset(r.id for r in c.requirements) for c in explanation.conflicts]
    for conflict in case.conflicts:
        assert conflict in reported, (sorted(conflict), [sorted(c) for c in reported])
    assert case.first <= reported[0], reported
    steps = " | ".join(explanation.reasons)
    for fact in case.facts:
        assert fact in steps, (fact, steps)
    offered = [frozenset(w.relax) for w in explanation.fixes]
    for way in case.ways:
        assert way in offered, (sorted(way), [sorted(o) for o in offered])
    for way in case.not_ways:
        assert way not in offered, (sorted(way), [sorted(o) for o in offered])
    assert explanation.fixes, "every scenario here has a way out"
    check_explanation(real_matrix, case.data, explanation)


def test_the_table_is_large():
    assert len(SCENARIOS) > 30


def test_explanations_stay_within_their_search_budget(real_matrix):
    # The hardest profiles bench/solve.py times: three frameworks, several conflicts.
    from envctl.core.relax import SEARCH_BUDGET

    data = profile(
        {"torch": ">=2.4,<2.6", "tensorflow": "==2.15.1", "jax[cuda13]": "==0.4.26"},
        gpus=["B200", "RTX 4090"],
        driver="470.57.02",
        python=">=3.12",
    )
    with pytest.raises(UnsatisfiableError) as err:
        run(real_matrix, data)
    explanation = err.value.explanation
    assert explanation.searches <= SEARCH_BUDGET + 15  # a way out being verified may finish
    assert len(explanation.conflicts) >= 3
    check_explanation(real_matrix, data, explanation)
