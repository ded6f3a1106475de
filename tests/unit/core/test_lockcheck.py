"""Unit tests of the post-resolve checks (pure: entries and a request in, problems out)."""

from __future__ import annotations

import pytest

from envctl.core.lock import LockEntry
from envctl.core.lockcheck import check_platform, cuda_of, wheel_fits
from envctl.core.solution import Expectations, IndexPin, PlatformRequest

X86 = "py3-none-manylinux2014_x86_64"


def _wheel(name: str, version: str, tags: str = X86, index: str | None = None) -> LockEntry:
    dist = name.replace("-", "_")
    url = f"https://files.example/{dist}-{version}-{tags}.whl"
    return LockEntry("pip", name, version, "linux-64", url, sha256="0" * 64, index=index)


def _request(**expect: object) -> PlatformRequest:
    defaults: dict[str, object] = {"cuda": "12.4", "glibc": "2.17", "cpu_arch": "x86_64"}
    defaults.update(expect)
    return PlatformRequest(
        platform="linux-64",
        python_version="3.12",
        python_platform="x86_64-manylinux_2_17",
        requirements=("torch==2.5.1",),
        expect=Expectations(**defaults),  # type: ignore[arg-type]
    )


TORCH_124 = (
    _wheel("torch", "2.5.1", "cp312-cp312-manylinux1_x86_64"),
    _wheel("nvidia-cuda-runtime-cu12", "12.4.127"),
    _wheel("nvidia-cublas-cu12", "12.4.5.8"),
    _wheel("nvidia-cufft-cu12", "11.2.1.3"),  # own library version, not CUDA's
    _wheel("nvidia-cudnn-cu12", "9.1.0.70"),
    _wheel("nvidia-nccl-cu12", "2.21.5"),
    _wheel("filelock", "3.16.1", "py3-none-any"),
)


def test_consistent_closure_passes() -> None:
    request = _request(cudnn="9.1.0.70", nccl="2.21.5")
    assert check_platform(TORCH_124, request, offline=False) == ()


def test_mixed_cuda_minors_are_named() -> None:
    entries = (*TORCH_124, _wheel("nvidia-cuda-nvcc-cu12", "12.9.86"))
    (problem,) = check_platform(entries, _request(), offline=False)
    assert "mixes CUDA minor versions" in problem
    assert "12.9 (nvidia-cuda-nvcc-cu12 12.9.86)" in problem


def test_cublas_11_is_numbered_on_its_own() -> None:
    # torch 1.13.1's PyPI wheel pins nvidia-cublas-cu11==11.10.3.66 beside the 11.7.99 runtime
    # (a real lock of that solution, against PyPI); only cuBLAS 12.x follows its toolkit's minor
    entries = (
        _wheel("torch", "1.13.1", "cp310-cp310-manylinux1_x86_64"),
        _wheel("nvidia-cuda-runtime-cu11", "11.7.99"),
        _wheel("nvidia-cuda-nvrtc-cu11", "11.7.99"),
        _wheel("nvidia-cublas-cu11", "11.10.3.66"),
        _wheel("nvidia-cudnn-cu11", "8.5.0.96"),
    )
    assert check_platform(entries, _request(cuda="11.7"), offline=False) == ()
    assert cuda_of(_wheel("nvidia-cublas-cu11", "11.10.3.66")) is None
    assert cuda_of(_wheel("nvidia-cublas-cu12", "12.4.5.8")) == "12.4"


def test_wrong_cuda_minor_and_major() -> None:
    (problem,) = check_platform(TORCH_124, _request(cuda="12.1"), offline=False)
    assert problem.startswith("CUDA 12.1 expected but nvidia-cuda-runtime-cu12 12.4.127")
    entries = (*TORCH_124[:1], _wheel("nvidia-cudnn-cu11", "8.5.0.96"))
    assert "CUDA 12 expected but the lock has nvidia-cudnn-cu11 8.5.0.96" in check_platform(
        entries, _request(), offline=False
    )


def test_cudnn_and_nccl_pins() -> None:
    problems = check_platform(TORCH_124, _request(cudnn="9.5.1.17", nccl="2.20.5"), offline=False)
    assert problems == (
        "cuDNN 9.5.1.17 expected but the lock has nvidia-cudnn-cu12 9.1.0.70",
        "NCCL 2.20.5 expected but the lock has nvidia-nccl-cu12 2.21.5",
    )


@pytest.mark.parametrize(
    ("filename", "glibc", "arch", "fits"),
    [
        ("a-1-py3-none-any.whl", "2.17", "x86_64", True),
        ("a-1-cp312-cp312-manylinux1_x86_64.whl", "2.17", "x86_64", True),
        ("a-1-py3-none-manylinux2014_x86_64.whl", "2.17", "x86_64", True),
        ("a-1-py3-none-manylinux_2_28_x86_64.whl", "2.17", "x86_64", False),
        ("a-1-py3-none-manylinux_2_28_x86_64.whl", "2.28", "x86_64", True),
        ("a-1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2.17", "aarch64", False),
        ("a-1-py3-none-manylinux_2_28_x86_64.manylinux_2_17_x86_64.whl", "2.17", "x86_64", True),
        ("a-1-py3-none-linux_x86_64.whl", "2.17", "x86_64", True),  # PyTorch index style
        ("a-1-py3-none-linux_x86_64.whl", "2.17", "aarch64", False),
        ("a-1-py3-none-musllinux_1_2_x86_64.whl", "2.17", "x86_64", False),
        ("not-a-wheel.whl", "2.17", "x86_64", False),
    ],
)
def test_wheel_fits(filename: str, glibc: str, arch: str, fits: bool) -> None:
    assert wheel_fits(filename, glibc=glibc, cpu_arch=arch) is fits


def test_glibc_problem_names_the_files() -> None:
    entries = (_wheel("mkl", "2025.0.0", "py2.py3-none-manylinux_2_28_x86_64"),)
    (problem,) = check_platform(entries, _request(cuda=None), offline=False)
    assert "glibc 2.17" in problem and "mkl-2025.0.0-py2.py3-none-manylinux_2_28_x86_64.whl" in problem


def test_index_pins_label_and_index() -> None:
    pin = IndexPin("torch", "https://download.pytorch.org/whl/cu121", "cu121")
    request = PlatformRequest(
        "linux-64", "3.12", "x86_64-manylinux_2_17", ("torch==2.5.1+cu121",), indexes=(pin,)
    )
    right = _wheel("torch", "2.5.1+cu121", index="https://download.pytorch.org/whl/cu121/")
    assert check_platform((right,), request, offline=False) == ()
    wrong_label = _wheel("torch", "2.5.1+cpu", index=pin.url)
    assert "expected +cu121" in check_platform((wrong_label,), request, offline=False)[0]
    pypi = _wheel("torch", "2.5.1+cu121", index="https://pypi.org/simple")
    assert "not from its index" in check_platform((pypi,), request, offline=False)[0]
    assert check_platform((pypi,), request, offline=True) == ()  # a wheelhouse has no index
    plain_pin = IndexPin("torch", "https://pypi.org/simple", None)
    labelled = _wheel("torch", "2.5.1+cpu", index="https://pypi.org/simple")
    request = PlatformRequest("linux-64", "3.12", "x", ("torch==2.5.1",), indexes=(plain_pin,))
    assert "expected no local label" in check_platform((labelled,), request, offline=False)[0]


def test_cpu_only_platform_has_no_cuda() -> None:
    request = _request(cuda=None, cpu_only=True)
    entries = (_wheel("torch", "2.5.1"), _wheel("nvidia-nccl-cu12", "2.21.5"))
    assert check_platform(entries, request, offline=False) == (
        "CPU-only platform linux-64 pulls CUDA packages: nvidia-nccl-cu12 2.21.5",
    )


def test_cuda_of() -> None:
    assert cuda_of(_wheel("nvidia-cuda-runtime-cu12", "12.4.127")) == "12.4"
    assert cuda_of(_wheel("nvidia-cuda-runtime", "13.0.96")) == "13.0"  # CUDA 13 drops -cuXX
    assert cuda_of(_wheel("nvidia-nvjitlink-cu12", "12.4.127")) == "12.4"
    assert cuda_of(_wheel("nvidia-cudnn-cu12", "9.1.0.70")) is None
    assert cuda_of(_wheel("nvidia-curand-cu12", "10.3.5.147")) is None
    assert cuda_of(_wheel("nvidia-cublas-cu12", "12.4.5.8")) == "12.4"
    # CUDA 13: cuda-toolkit 13.0.2 itself resolves to cublas 13.1.0.3 and nvjitlink 13.5.37
    assert cuda_of(_wheel("nvidia-cublas", "13.1.0.3")) is None
    assert cuda_of(_wheel("nvidia-nvjitlink", "13.5.37")) is None
