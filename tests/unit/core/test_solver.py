"""Solver semantics against the small hand-made matrix in tests/fixtures/matrix_small."""

from __future__ import annotations

import pytest

from envctl.errors import InputError, UnsatisfiableError

from .helpers import build_of, profile, run, version_of


def test_newest_torch_with_new_driver_uses_cuda13(small_matrix):
    s = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["H100"], driver="580.95.05"))
    assert version_of(s, "torch") == "2.11.0"
    assert (s.cuda, s.cudnn, s.nccl, s.driver_mode) == ("13.0", "9.19.0.56", "2.28.9", "native")
    assert s.min_driver == "580.65.06"
    assert build_of(s, "torch").requirement == "torch==2.11.0"


def test_driver_550_falls_back_to_cu128_by_minor_version_compat(small_matrix):
    s = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["H100"], driver="550.54.15"))
    assert (version_of(s, "torch"), s.cuda) == ("2.10.0", "12.8")
    assert s.driver_mode == "minor-version compatibility"
    assert s.min_driver == "525.60.13"
    decision = next(d for d in s.decisions if d.subject == "torch")
    assert "2.11.0" in decision.because and "580.65.06" in decision.because


def test_old_driver_takes_the_extra_index_build_with_its_local_label(small_matrix):
    s = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["H100"], driver="470.57.02"))
    b = build_of(s, "torch")
    assert b.requirement == "torch==2.5.1+cu118"
    assert b.index == "https://download.pytorch.org/whl/cu118"
    pin = s.request_for("linux-64").indexes[0]
    assert (pin.package, pin.local_label) == ("torch", "cu118")
    assert s.min_driver == "450.80.02"  # printed as NVIDIA writes it


def test_pypi_build_preferred_over_index_for_same_cuda(small_matrix):
    s = run(small_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="560.35.03"))
    assert build_of(s, "torch").requirement == "torch==2.5.1"
    assert s.cuda == "12.4"
    assert s.request_for("linux-64").indexes == ()


def test_kepler_needs_a_cuda11_build(small_matrix):
    s = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["K80", "H100"]))
    assert build_of(s, "torch").variant == "cu118"
    fit = {g.name: g.runs_via for g in s.gpus}
    assert "sm_37" in fit["K80"] and "sm_90" in fit["H100"]


def test_kepler_with_new_torch_is_unsatisfiable_and_names_the_gpu(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": ">=2.10"}, gpus=["Tesla K80"]))
    ids = {r.id for r in err.value.explanation.conflict}
    assert ids == {"frameworks.torch", "targets.gpus.K80"}
    assert "CUDA after 11.8 no longer targets K80" in err.value.message
    assert "use torch 2.5.1 (cu118)" in err.value.hint


def test_blackwell_has_no_kernels_before_cu128(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": "<2.10"}, gpus=["B200"]))
    assert "no kernels for B200" in err.value.message


def test_driver_floor_conflict_suggests_older_torch_and_newer_driver(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": ">=2.11"}, gpus=["H100"], driver="535.104.05"))
    e = err.value
    assert "needs driver >= 580.65.06 (CUDA 13.0 natively)" in e.message
    assert "12.x by minor-version compatibility" in e.message
    assert "use torch 2.10.0 (cu128)" in e.hint
    assert "upgrade the driver to >= 580.65.06" in e.hint
    assert "forward_compat" in e.hint  # H100 is a data-center GPU
    assert e.exit_code == 1


def test_forward_compat_only_for_datacenter_gpus(small_matrix):
    s = run(
        small_matrix, profile({"torch": ">=2.11"}, gpus=["H100"], driver="535.104.05", forward_compat=True)
    )
    assert s.driver_mode == "forward compatibility"
    assert any("cuda-compat" in w for w in s.warnings)
    with pytest.raises(UnsatisfiableError) as err:
        run(
            small_matrix,
            profile({"torch": ">=2.11"}, gpus=["RTX 4090"], driver="535.104.05", forward_compat=True),
        )
    assert "forward_compat" not in (err.value.hint or "")


def test_both_sides_of_the_cuda13_driver_floor(small_matrix):
    below = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["H100"], driver="580.65.05"))
    at = run(small_matrix, profile({"torch": ">=2.4"}, gpus=["H100"], driver="580.65.06"))
    assert below.cuda == "12.8" and at.cuda == "13.0"


def test_ptx_jit_not_covered_by_minor_version_compat(small_matrix):
    # TF 2.18 has no sm_90 SASS: H100 needs PTX JIT, which needs the CUDA 12.5 driver natively.
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"tensorflow": "*"}, gpus=["H100"], driver="550.54.15"))
    assert "PTX JIT" in err.value.message
    ok = run(small_matrix, profile({"tensorflow": "*"}, gpus=["H100"], driver="555.42.02"))
    assert any("PTX JIT" in w for w in ok.warnings)
    l4 = run(small_matrix, profile({"tensorflow": "*"}, gpus=["L4"], driver="550.54.15"))
    assert "sm_89" in l4.gpus[0].runs_via


def test_tensorflow_and_torch_disagree_on_cuda_minor(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"tensorflow": "==2.18.0", "torch": "==2.5.1"}, gpus=["L4"]))
    assert "no CUDA toolkit fits both" in err.value.message


def test_torch_and_jax_share_cuda_and_cudnn(small_matrix):
    s = run(
        small_matrix, profile({"torch": "==2.5.1", "jax[cuda12]": "*"}, gpus=["H100"], driver="560.35.03")
    )
    assert (s.cuda, s.cudnn) == ("12.4", "9.1.0.70")
    assert version_of(s, "jax") == "0.5.3"
    assert build_of(s, "jax").requirement == "jax[cuda12]==0.5.3"
    assert s.request_for("linux-64").expect.cuda == "12.4"


def test_aarch64_gpu_nodes_without_cuda_wheels(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": "*"}, gpus=["H100"], arch=["x86_64", "aarch64"]))
    assert "targets.arch.linux-aarch64" in {r.id for r in err.value.explanation.conflict}
    s = run(
        small_matrix, profile({"torch": "*"}, gpus=["H100"], arch=["x86_64", "aarch64"], gpu_arch=["x86_64"])
    )
    assert build_of(s, "torch", "linux-aarch64").variant == "cpu"
    assert s.request_for("linux-aarch64").expect.cpu_only
    assert "__cuda" not in s.request_for("linux-aarch64").virtual_packages
    assert s.request_for("linux-64").virtual_packages["__cuda"] == s.cuda


def test_cpu_only_profile_prefers_cpu_build(small_matrix):
    s = run(small_matrix, profile({"torch": "*"}))
    assert build_of(s, "torch").requirement == "torch==2.11.0+cpu"
    assert s.cuda is None and s.min_driver is None


def test_python_range_conflict(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": ">=2.10"}, gpus=["H100"], python="<3.10"))
    assert {r.id for r in err.value.explanation.conflict} == {"environment.python", "frameworks.torch"}


def test_glibc_floor_selects_older_wheel(small_matrix):
    s = run(small_matrix, profile({"torch": "*"}, gpus=["H100"], glibc="2.17"))
    assert version_of(s, "torch") == "2.5.1"
    assert s.request_for("linux-64").python_platform == "x86_64-manylinux_2_17"


def test_mkl_on_aarch64_is_impossible_and_amd_warns(small_matrix):
    with pytest.raises(UnsatisfiableError) as err:
        run(small_matrix, profile({"torch": "*"}, arch=["aarch64"], blas="mkl"))
    assert "MKL has no wheels for linux-aarch64" in err.value.message
    s = run(small_matrix, profile({"torch": "*"}, cpu_vendor="amd", blas="mkl"))
    assert s.blas == "mkl" and any("AMD" in w for w in s.warnings)
    assert "mkl" in s.request_for("linux-64").requirements
    auto = run(small_matrix, profile({"torch": "*"}, cpu_vendor="amd"))
    assert auto.blas == "openblas"


def test_nvidia_smi_names_and_raw_compute_capability(small_matrix):
    s = run(small_matrix, profile({"torch": "*"}, gpus=["NVIDIA H100 80GB HBM3", "sm_75"]))
    assert {g.name for g in s.gpus} == {"H100", "sm_75"}


@pytest.mark.parametrize(
    "data, fragment",
    [
        (profile({"torch": "==9.9"}), "no known torch release matches"),
        (profile({"torch": ">=2.5,<2.4"}), "no known torch release matches"),
        (profile({"torch": "*"}, python=">=3.99"), "no Python release matches"),
        (profile({"torch": "*"}, gpus=["H1000"]), "unknown GPU 'H1000'"),
        (profile({"torch": "*"}, gpus=["cc:4.4"]), "unknown compute capability"),
    ],
)
def test_bad_input_is_input_error(small_matrix, data, fragment):
    with pytest.raises(InputError) as err:
        run(small_matrix, data)
    assert fragment in err.value.message
    assert err.value.exit_code == 2


def test_ranged_builds_are_held_to_the_chosen_cuda_and_cudnn_by_constraints(small_matrix):
    # jax[cuda12] accepts any 12.x: without constraints a resolver takes the newest 12.x wheels
    # and the closure mixes CUDA minors with torch's 12.4 pins.
    s = run(
        small_matrix, profile({"torch": "==2.5.1", "jax[cuda12]": "*"}, gpus=["H100"], driver="560.35.03")
    )
    request = s.request_for("linux-64")
    assert "nvidia-cuda-runtime-cu12==12.4.*" in request.constraints
    assert "nvidia-cudnn-cu12==9.1.0.70" in request.constraints
    assert not any(r.startswith("nvidia-") for r in request.requirements)  # adds no package
    exact = run(small_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="560.35.03"))
    # exact pins hold their own wheels, not the unpinned ones they pull in (nvjitlink): the minor
    # constraints apply to them too, the cuDNN one only to ranged builds
    constraints = exact.request_for("linux-64").constraints
    assert f"nvidia-nvjitlink-cu12=={exact.cuda}.*" in constraints
    assert not [c for c in constraints if c.startswith("nvidia-cudnn")]
    # cuBLAS 11.x is numbered on its own (11.11.3.6 for CUDA 11.8): no minor constraint for it
    cu118 = run(small_matrix, profile({"torch": "==2.5.1"}, gpus=["K80"])).request_for("linux-64")
    assert "nvidia-cuda-runtime-cu11==11.8.*" in cu118.constraints
    assert not [c for c in cu118.constraints if c.startswith("nvidia-cublas")]
