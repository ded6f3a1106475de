"""Each decision of a solved stack says why the alternative that would have been preferred lost
(issue 11, class 14), on the committed matrix."""

from __future__ import annotations

from .helpers import profile, run


def because(solution, subject: str) -> str:  # type: ignore[no-untyped-def]
    return next(d.because for d in solution.decisions if d.subject == subject)


def test_cuda_says_the_pypi_default_would_run_only_by_minor_version_compat(real_matrix):
    # PyPI:torch-2.5.1 METADATA pins CUDA 12.4 (cu124); PT-PREV: 12.1 and 11.8 on the index.
    # CUDA-RN table 3: 12.4 needs 550.54.14 natively, 12.1 needs 530.30.02: driver 535 runs 12.1
    # natively and 12.4 only by minor-version compatibility, so the native 12.1 build wins.
    s = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"], driver="535.104.05"))
    assert s.cuda == "12.1"
    cuda = because(s, "cuda")
    assert "12.4 (PyPI default cu124)" in cuda
    assert "would run only by minor-version compatibility on 535.104.05" in cuda
    assert cuda.endswith("12.1 runs natively")
    assert "the PyPI build (cu124)" in because(s, "index:torch:linux-64")
    assert because(s, "torch") == "newest release frameworks.torch = '==2.5.1' allows"


def test_cuda_names_the_driver_floor_a_newer_major_needs(real_matrix):
    # CUDA-RN table 2: CUDA 13.x needs >= 580.65.06 even by minor-version compatibility.
    s = run(real_matrix, profile({"torch": "==2.11.0"}, gpus=["H100"], driver="550.54.15"))
    assert s.cuda.startswith("12.")
    cuda = because(s, "cuda")
    assert "13.0" in cuda and "580.65.06" in cuda and "550.54.15" in cuda


def test_cuda_says_newer_toolkits_no_longer_target_the_gpu(real_matrix):
    # CUDA-RN 2.6.2 / LLVM: K80 (CC 3.7) is last targeted by CUDA 11.8.
    s = run(real_matrix, profile({"torch": "*"}, gpus=["K80"]))
    assert s.cuda == "11.8"
    assert "no longer targets K80" in because(s, "cuda")
    assert "no longer targets K80" in because(s, "index:torch:linux-64")


def test_cuda_says_which_framework_has_no_build_for_the_newer_toolkit(real_matrix):
    # jax[cuda12] plugins accept CUDA 12.x only (PyPI METADATA); torch's PyPI default is cu130.
    s = run(real_matrix, profile({"torch": "==2.11.0", "jax[cuda12]": "*"}, gpus=["A100"]))
    assert s.cuda.startswith("12.")
    assert "has no build for it" in because(s, "cuda")


def test_python_says_which_build_stops_at_the_older_release(real_matrix):
    # PyPI wheel tags: torch 2.5.1 ships cp39..cp313; python.toml knows 3.14.
    s = run(real_matrix, profile({"torch": "==2.5.1"}, gpus=["H100"]))
    assert s.python == "3.13"
    assert "3.14: torch 2.5.1" in because(s, "python") and "3.9 … 3.13" in because(s, "python")
