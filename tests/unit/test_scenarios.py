"""Solver scenarios on the committed compat_matrix/: every framework, every GPU generation, both
sides of driver floors, multi-framework conflicts, aarch64, AMD, Python ranges, bad input.

Expectations are facts from NVIDIA's and the frameworks' own documentation and wheels (see
compat_matrix/sources.toml), not outputs copied from the solver.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from envctl.adapters.profile_file import load_profile
from envctl.core.stack import solve
from envctl.errors import InputError, UnsatisfiableError

from .core.helpers import build_of, profile, run, version_of

PROFILES = sorted((Path(__file__).resolve().parents[2] / "profiles").glob("*.toml"))


def unsat(matrix, data):  # type: ignore[no-untyped-def]
    with pytest.raises(UnsatisfiableError) as err:
        run(matrix, data)
    return err.value


# --- PyTorch ------------------------------------------------------------------------------


def test_torch_251_on_h100_is_the_pypi_cu124_build(real_matrix):
    s = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="560.35.03"))
    assert build_of(s, "torch").requirement == "torch==2.5.1"
    assert (s.cuda, s.cudnn, s.nccl) == ("12.4", "9.1.0.70", "2.21.5")


def test_kepler_k80_only_runs_cu118_builds_with_a_cudnn_8(real_matrix):
    # torch 2.4+ cu118 pins cuDNN 9.1, whose support matrix starts at CC 5.0 (CUDNN-SM 9.0.0)
    s = run(real_matrix, profile({"torch": "==2.3.1"}, gpus=["Tesla K80"]))
    assert build_of(s, "torch").requirement == "torch==2.3.1+cu118"
    assert "sm_37" in s.gpus[0].runs_via
    e = unsat(real_matrix, profile({"torch": "==2.5.1"}, gpus=["Tesla K80"]))
    assert any("no kernels for K80" in r for r in e.explanation.reasons)


def test_kepler_with_cuda12_only_torch_is_unsatisfiable(real_matrix):
    e = unsat(real_matrix, profile({"torch": ">=2.8"}, gpus=["K80"]))
    assert "K80" in e.message


def test_blackwell_b200_needs_sm_100(real_matrix):
    s = run(real_matrix, profile({"torch": "==2.8.0"}, gpus=["B200"], driver="570.133.20"))
    assert "sm_100" in build_of(s, "torch").archs
    assert Version(s.cuda) >= Version("12.8")


def test_blackwell_on_torch_27_comes_from_the_cu128_index(real_matrix):
    s = run(real_matrix, profile({"torch": "==2.7.1"}, gpus=["B200"]))
    assert build_of(s, "torch").requirement == "torch==2.7.1+cu128"


def test_blackwell_on_torch_26_is_unsatisfiable_with_a_newer_torch_as_way_out(real_matrix):
    e = unsat(real_matrix, profile({"torch": "==2.6.0"}, gpus=["B200"]))
    assert "no kernels for B200" in e.message
    assert "use torch" in e.hint


def test_consumer_blackwell_rtx5090_needs_sm_120(real_matrix):
    s = run(real_matrix, profile({"torch": "*"}, gpus=["NVIDIA GeForce RTX 5090"], driver="570.124.06"))
    assert "sm_120" in s.gpus[0].runs_via


@pytest.mark.parametrize("gpu", ["V100", "P100", "Tesla M60"])
def test_maxwell_pascal_volta_keep_the_cu126_build_of_new_torch(real_matrix, gpu):
    s = run(real_matrix, profile({"torch": ">=2.11"}, gpus=[gpu]))
    assert build_of(s, "torch").variant == "cu126"


def test_torch_113_on_driver_470_uses_minor_version_compatibility(real_matrix):
    s = run(real_matrix, profile({"torch": "==1.13.1"}, gpus=["A100"], driver="470.57.02"))
    assert (s.cuda, s.driver_mode) == ("11.7", "minor-version compatibility")


def test_torch_20_on_h100_needs_the_cu118_build(real_matrix):
    # The PyPI cu117 wheel has no sm_90 and no PTX.
    s = run(real_matrix, profile({"torch": "==2.0.1"}, gpus=["H100"]))
    assert build_of(s, "torch").requirement == "torch==2.0.1+cu118"


def test_ada_l40s_runs_sm_86_code(real_matrix):
    s = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["L40S"]))
    assert "sm_86" in s.gpus[0].runs_via


# --- driver floors, both sides ------------------------------------------------------------


def test_cuda13_floor_both_sides(real_matrix):
    below = run(real_matrix, profile({"torch": "==2.11.0"}, gpus=["H100"], driver="580.65.05"))
    at = run(real_matrix, profile({"torch": "==2.11.0"}, gpus=["H100"], driver="580.65.06"))
    assert Version(below.cuda).major == 12 and at.cuda == "13.0"
    assert build_of(at, "torch").requirement == "torch==2.11.0"


def test_cuda12_minor_compat_floor_both_sides(real_matrix):
    below = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="525.60.12"))
    at = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="525.60.13"))
    assert below.cuda == "11.8"
    assert (at.cuda, at.driver_mode) == ("12.4", "minor-version compatibility")


def test_cuda124_native_floor_is_the_update_the_wheel_carries(real_matrix):
    # torch 2.5.1 pins nvidia-cuda-runtime-cu12==12.4.127: CUDA 12.4 Update 1, >= 550.54.15
    s = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="550.54.15"))
    assert (s.cuda, s.driver_mode, s.min_driver) == ("12.4", "native", "550.54.15")
    ga = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="550.54.14"))
    assert (ga.cuda, ga.driver_mode) == ("12.1", "native")  # the cu121 index build


def test_driver_too_old_for_every_cuda12_names_the_smallest_upgrade(real_matrix):
    e = unsat(real_matrix, profile({"torch": ">=2.8"}, gpus=["H100"], driver="470.57.02"))
    assert "upgrade the driver to >= 525.60.13" in e.hint
    assert "forward_compat" in e.hint  # H100 is a data-center GPU


def test_a_driver_past_a_gpus_last_branch_is_refused_with_an_older_branch_as_way_out(real_matrix):
    # NV-BRANCHES: R470 is the last driver branch for Kepler; no CUDA mode changes that
    e = unsat(real_matrix, profile({"torch": "==2.3.1"}, gpus=["K80"], driver="535.104.05"))
    assert "no driver after branch R470" in e.message
    assert "use a driver of branch R470 or older" in e.hint
    assert "upgrade" not in e.hint


def test_a_driver_older_than_the_gpu_is_refused_with_its_first_driver_as_way_out(real_matrix):
    # GPU-OPERATOR: HGX B200 requires 570.133.20 or later, whatever the CUDA toolkit
    e = unsat(real_matrix, profile({"torch": "==2.8.0"}, gpus=["B200"], driver="570.124.06"))
    assert "B200 needs driver >= 570.133.20" in e.message
    assert "upgrade the driver to >= 570.133.20" in e.hint
    s = run(real_matrix, profile({"torch": "==2.8.0"}, gpus=["B200"], driver="570.133.20"))
    assert s.min_driver == "570.133.20"  # the GPU's floor, above the wheels' 570.124.06
    assert any("B200 needs >= 570.133.20" in d.because for d in s.decisions if d.subject == "driver")


def test_a_cudnn_without_kernels_for_the_gpu_is_the_stated_reason(real_matrix):
    # CUDNN-SM: cuDNN 9.3 lists CC up to 9.0, TensorFlow 2.18 pins 9.3.0.75
    e = unsat(real_matrix, profile({"tensorflow": "==2.18.1"}, gpus=["RTX 5090"]))
    assert "has no kernels for RTX 5090 (CC 12.0): cuDNN 9.3: CC 5.0-9.0" in e.message


def test_forward_compat_only_on_datacenter_gpus(real_matrix):
    ok = run(
        real_matrix, profile({"jax[cuda13]": "*"}, gpus=["H100"], driver="535.104.05", forward_compat=True)
    )
    assert ok.driver_mode == "forward compatibility"
    e = unsat(
        real_matrix,
        profile({"jax[cuda13]": "*"}, gpus=["RTX 4090"], driver="535.104.05", forward_compat=True),
    )
    assert "forward_compat" not in e.hint


# --- TensorFlow ---------------------------------------------------------------------------


def test_tf_210_needs_system_cuda_112_from_conda(real_matrix):
    s = run(real_matrix, profile({"tensorflow": "==2.10.1"}, gpus=["T4"]))
    assert s.cuda == "11.2"
    assert "cudatoolkit=11.2" in s.request_for("linux-64").conda_specs


def test_tf_210_reaches_a100_only_by_ptx(real_matrix):
    s = run(real_matrix, profile({"tensorflow": "==2.10.1"}, gpus=["A100"]))
    assert "PTX JIT from compute_80" in s.gpus[0].runs_via
    assert any("PTX JIT" in w for w in s.warnings)


def test_tf_215_on_t4(real_matrix):
    s = run(real_matrix, profile({"tensorflow": "~=2.15.0"}, gpus=["T4"]))
    assert (s.cuda, Version(s.cudnn).major) == ("12.2", 8)
    assert build_of(s, "tensorflow").requirement.startswith("tensorflow[and-cuda]==2.15")


def test_tf_217_has_ada_code(real_matrix):
    s = run(real_matrix, profile({"tensorflow": "~=2.17.0"}, gpus=["L4"]))
    assert "sm_89" in s.gpus[0].runs_via


def test_tf_218_on_h100_needs_a_native_driver_for_ptx_jit(real_matrix):
    e = unsat(real_matrix, profile({"tensorflow": "~=2.18.0"}, gpus=["H100"], driver="550.54.15"))
    assert "PTX JIT" in e.message
    assert "555.42.06" in e.hint  # TensorFlow 2.18 pins cudart 12.5.82: CUDA 12.5 Update 1


def test_tf_aarch64_has_no_cuda(real_matrix):
    e = unsat(real_matrix, profile({"tensorflow": "*"}, gpus=["GH200"], arch=["aarch64"]))
    assert [r.id for r in e.explanation.conflict] == ["targets.gpu_arch.linux-aarch64"]
    assert "CPU-only" in e.hint
    cpu = run(real_matrix, profile({"tensorflow": "*"}, arch=["aarch64"]))
    assert build_of(cpu, "tensorflow", "linux-aarch64").variant == "cpu"


def test_tf_python_range(real_matrix):
    e = unsat(real_matrix, profile({"tensorflow": "~=2.10.0"}, python="==3.11.*"))
    assert "allow Python 3.10" in e.hint


# --- JAX ----------------------------------------------------------------------------------


def test_jax_0426_uses_cudnn_8(real_matrix):
    s = run(real_matrix, profile({"jax[cuda12]": "==0.4.26"}, gpus=["A100"]))
    assert Version(s.cudnn).major == 8
    assert build_of(s, "jax").requirement == "jax[cuda12]==0.4.26"


def test_jax_cuda13_needs_sm_75(real_matrix):
    e = unsat(real_matrix, profile({"jax[cuda13]": "*"}, gpus=["V100"]))
    assert "V100" in e.message


def test_jax_cuda12_drops_kepler(real_matrix):
    e = unsat(real_matrix, profile({"jax[cuda12]": "*"}, gpus=["K80"]))
    assert "CUDA after 11.8 no longer targets K80" in e.message


def test_jax_cuda13_driver_floor(real_matrix):
    e = unsat(real_matrix, profile({"jax[cuda13]": "*"}, gpus=["H100"], driver="570.124.06"))
    assert "upgrade the driver to >= 580.65.06" in e.hint


def test_jax_prefers_a_cuda_the_driver_runs_natively(real_matrix):
    s = run(real_matrix, profile({"jax[cuda12]": "*"}, gpus=["A100"], driver="570.124.06"))
    assert (s.cuda, s.driver_mode) == ("12.8", "native")


# --- several frameworks -------------------------------------------------------------------


def test_torch_21_and_new_jax_disagree_on_cudnn(real_matrix):
    e = unsat(real_matrix, profile({"torch": "~=2.1.0", "jax[cuda12]": ">=0.4.30"}, gpus=["A100"]))
    assert "cuDNN" in " ".join(e.explanation.reasons)  # jax >= 0.4.36 clashes on CUDA first
    assert {r.id for r in e.explanation.conflict} == {"frameworks.torch", "frameworks.jax[cuda12]"}


def test_torch_and_tf_218_cannot_share_cuda_minor(real_matrix):
    e = unsat(real_matrix, profile({"torch": "==2.5.1", "tensorflow": "~=2.18.0"}, gpus=["L4"]))
    assert "no CUDA toolkit fits both" in e.message
    both = {"frameworks.torch", "frameworks.tensorflow"}
    assert any(set(w.relax) == both for w in e.explanation.fixes)  # both must move


def test_torch_28_and_tf_220_share_cuda_and_cudnn(real_matrix):
    s = run(real_matrix, profile({"torch": "==2.8.0", "tensorflow": "==2.20.0"}, gpus=["L4"]))
    assert s.cudnn == "9.10.2.21"
    assert s.request_for("linux-64").expect.cuda == s.cuda


def test_torch_and_jax_cuda13_share_one_cuda(real_matrix):
    s = run(real_matrix, profile({"torch": "*", "jax[cuda13]": "*"}, gpus=["H100"]))
    assert Version(s.cuda).major == 13
    assert version_of(s, "torch") == real_matrix.framework("torch").versions()[0].public


# --- platforms, glibc, BLAS, Python --------------------------------------------------------


def test_aarch64_gpus_need_an_index_cuda_build_from_torch_27(real_matrix):
    # aarch64 CUDA wheels: whl/cu128 from 2.7 (PyTorch's build matrix), PyPI from 2.11
    e = unsat(real_matrix, profile({"torch": "<=2.6"}, gpus=["H100"], arch=["x86_64", "aarch64"]))
    assert "targets.arch.linux-aarch64" in {r.id for r in e.explanation.conflict}
    s = run(real_matrix, profile({"torch": "<=2.10"}, gpus=["H100", "GH200"], arch=["x86_64", "aarch64"]))
    assert build_of(s, "torch", "linux-aarch64").requirement == "torch==2.10.0+cu130"
    s = run(real_matrix, profile({"torch": ">=2.11"}, gpus=["H100", "GH200"], arch=["x86_64", "aarch64"]))
    assert build_of(s, "torch", "linux-aarch64").variant.startswith("cu")


def test_cpu_only_aarch64_beside_gpu_x86(real_matrix):
    s = run(
        real_matrix,
        profile({"torch": "<=2.10"}, gpus=["H100"], arch=["x86_64", "aarch64"], gpu_arch=["x86_64"]),
    )
    assert build_of(s, "torch", "linux-aarch64").variant == "cpu"
    assert s.request_for("linux-aarch64").expect.cpu_only


def test_glibc_217_nodes_cannot_take_manylinux_2_28_torch(real_matrix):
    e = unsat(real_matrix, profile({"torch": ">=2.7"}, gpus=["A100"], glibc="2.17"))
    assert "glibc" in e.message


def test_glibc_217_nodes_get_an_older_torch(real_matrix):
    s = run(real_matrix, profile({"torch": "*"}, gpus=["A100"], glibc="2.17"))
    assert Version(version_of(s, "torch")) < Version("2.7")


def test_mkl_has_no_aarch64_wheels(real_matrix):
    e = unsat(real_matrix, profile({"torch": "*"}, arch=["aarch64"], blas="mkl"))
    assert "openblas" in e.hint


def test_mkl_on_amd_warns_and_auto_picks_openblas(real_matrix):
    s = run(real_matrix, profile({"torch": "*"}, cpu_vendor="amd", blas="mkl"))
    assert s.blas == "mkl" and any("AMD" in w for w in s.warnings)
    assert run(real_matrix, profile({"torch": "*"}, cpu_vendor="amd")).blas == "openblas"
    assert run(real_matrix, profile({"torch": "*"}, cpu_vendor="intel")).blas == "mkl"


def test_cpu_only_profile_takes_a_cpu_build(real_matrix):
    s = run(real_matrix, profile({"torch": "*"}))
    assert build_of(s, "torch").variant == "cpu"
    assert s.cuda is None


def test_python_range_conflict_with_old_torch(real_matrix):
    e = unsat(real_matrix, profile({"torch": "==1.13.1"}, gpus=["A100"], python=">=3.12"))
    assert "allow Python 3.11" in e.hint


# --- GPU names as nvidia-smi prints them ---------------------------------------------------


@pytest.mark.parametrize(
    "name, cc",
    [
        ("NVIDIA H100 80GB HBM3", "9.0"),
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("Tesla V100-SXM2-32GB", "7.0"),
        ("Tesla T4", "7.5"),
        ("NVIDIA GeForce RTX 4090", "8.9"),
        ("Tesla K80", "3.7"),
        ("NVIDIA B200", "10.0"),
        ("NVIDIA H200", "9.0"),
    ],
)
def test_nvidia_smi_names(real_matrix, name, cc):
    assert str(real_matrix.find_gpu(name).cc) == cc


# --- bad input and the bundled profiles ----------------------------------------------------


def test_unknown_versions_are_bad_input(real_matrix):
    with pytest.raises(InputError, match="no known torch release"):
        run(real_matrix, profile({"torch": "==3.0.0"}))
    with pytest.raises(InputError, match="unknown GPU"):
        run(real_matrix, profile({"torch": "*"}, gpus=["H1000"]))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_bundled_profiles_solve_and_every_gpu_runs(real_matrix, path):
    p, _ = load_profile(path)
    s = solve(p, real_matrix)
    assert len(s.gpus) == len({real_matrix.find_gpu(g).name for g in p.targets.gpus})
    for fit in s.gpus:
        assert "None" not in fit.runs_via
    for request in s.requests:
        assert request.requirements and request.python_version == s.python
