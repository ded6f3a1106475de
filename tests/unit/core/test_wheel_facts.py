"""Reading Python ranges, glibc floors and pins off wheel names and METADATA."""

from __future__ import annotations

import pytest

from envctl.core.wheel_facts import (
    IndexFile,
    active_pins,
    archs_from_member,
    linux_wheel,
    parse_metadata,
    python_range,
    runtime_release,
    toolkit_range,
)


def wheel(name: str):  # type: ignore[no-untyped-def]
    return linux_wheel(IndexFile(name, f"https://files.example/{name}"))


@pytest.mark.parametrize(
    ("name", "platform", "glibc", "pythons"),
    [
        ("torch-2.5.1-cp311-cp311-manylinux1_x86_64.whl", "linux-64", (2, 5), {11}),
        ("torch-2.7.0-cp313-cp313t-manylinux_2_28_aarch64.whl", "linux-aarch64", (2, 28), {13}),
        (
            "tensorflow-2.20.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "linux-64", (2, 17), {9},
        ),
        ("jax_cuda12_pjrt-0.5.0-py3-none-manylinux2014_aarch64.whl", "linux-aarch64", (2, 17), set()),
    ],
)  # fmt: skip
def test_linux_wheels(name: str, platform: str, glibc: tuple[int, int], pythons: set[int]) -> None:
    w = wheel(name)
    assert w is not None
    assert (w.platform, w.glibc, set(w.pythons)) == (platform, glibc, pythons)


@pytest.mark.parametrize(
    "name",
    [
        "torch-2.5.1-cp311-cp311-win_amd64.whl",
        "torch-2.5.1-cp311-none-macosx_11_0_arm64.whl",
        "torch-2.5.1.tar.gz",
        "not a wheel.whl",
        "jax-0.5.0-py3-none-any.whl",
    ],
)
def test_non_linux_files_are_ignored(name: str) -> None:
    assert wheel(name) is None


def test_python_range() -> None:
    assert python_range({9, 10, 11, 12, 13}) == ">=3.9,<3.14"
    assert python_range(set()) is None


METADATA = """Metadata-Version: 2.1
Name: torch
Requires-Python: >=3.8.0
Requires-Dist: filelock
Requires-Dist: nvidia-cudnn-cu12 (==9.1.0.70) ; platform_system == "Linux" and platform_machine == "x86_64"
Requires-Dist: triton (==3.1.0) ; platform_system == "Linux" and python_version < "3.13"
Requires-Dist: nvidia-nccl-cu12<3.0,>=2.25.1; extra == "and-cuda"
Requires-Dist: jax-cuda12-plugin[with-cuda]<=0.5.0,>=0.5.0; extra == "cuda12"
Requires-Dist: this is not a requirement ;;
"""


def test_active_pins_follow_markers_and_extras() -> None:
    requires_python, reqs = parse_metadata(METADATA)
    assert requires_python == ">=3.8.0"
    x86 = active_pins(reqs, "x86_64", "3.12")
    assert set(x86) == {"filelock", "nvidia-cudnn-cu12", "triton"}
    assert x86["nvidia-cudnn-cu12"].specifier == "==9.1.0.70"
    assert "triton" not in active_pins(reqs, "x86_64", "3.13")
    assert set(active_pins(reqs, "aarch64", "3.12")) == {"filelock", "triton"}
    with_extras = active_pins(reqs, "aarch64", "3.12", ("and-cuda", "cuda12"))
    assert with_extras["nvidia-nccl-cu12"].specifier == "<3.0,>=2.25.1"
    assert with_extras["jax-cuda12-plugin"].extras == ("with-cuda",)


@pytest.mark.parametrize(
    ("pins", "cuda"),
    [
        ({"nvidia-cuda-runtime-cu12": "==12.4.127"}, "==12.4"),
        ({"cuda-toolkit": "==13.0.2"}, "==13.0"),
        ({"nvidia-cuda-runtime-cu12": ">=12.1.105"}, ">=12.1,<13"),
        ({"nvidia-cuda-runtime-cu12": "<13.0,>=12.5.82"}, ">=12.5,<13"),
        ({"nvidia-cuda-runtime": ">=13.0.48"}, ">=13.0,<14"),
        # jax-cuda12-plugin >= 0.4.36: the nvcc floor decides, not the runtime's (jax-ml/jax plugin_setup.py)
        ({"nvidia-cuda-runtime-cu12": ">=12.1.105", "nvidia-cuda-nvcc-cu12": ">=12.6.85"}, ">=12.6,<13"),
        # jax 0.6.1 caps cuBLAS below 12.9, and cuBLAS 12.x follows the toolkit's minor
        (
            {"nvidia-cuda-nvcc-cu12": ">=12.6.85", "nvidia-cublas-cu12": "<12.9,>=12.1.3.1"},
            ">=12.6,<12.9",
        ),
        ({"nvidia-cublas-cu12": ">=12.1.3.1,<12.9.5"}, ">=12.1,<=12.9"),
        # cuBLAS 13.x and 11.x are not numbered like their toolkit: they bound nothing
        ({"cuda-toolkit": "==13.0.3", "nvidia-cublas": ">=13.1.0.3,<=13.1.1.3"}, "==13.0"),
        ({"nvidia-cublas-cu11": "==11.11.3.6"}, None),
        ({"nvidia-cudnn-cu12": "==9.1.0.70"}, None),
    ],
)
def test_toolkit_versioned_pins_to_a_toolkit_range(pins: dict[str, str], cuda: str | None) -> None:
    assert toolkit_range(pins) == cuda


def test_runtime_release_names_a_cudart_or_a_toolkit_release() -> None:
    assert runtime_release({"nvidia-cuda-runtime-cu12": "==12.8.90"}) == "cudart:12.8.90"
    assert (
        runtime_release({"cuda-toolkit": "==13.0.2", "nvidia-cudnn-cu13": "==9.19.0.56"}) == "toolkit:13.0.2"
    )
    assert runtime_release({"nvidia-cuda-runtime-cu12": ">=12.1.105"}) is None


def test_torch_arch_string() -> None:
    data = b"\x00abi_1\x00\x00sm_75 sm_80 sm_86 sm_90 sm_90a sm_100 sm_120 compute_120\x00/Module.cpp"
    assert archs_from_member("torch", data) == (["7.5", "8.0", "8.6", "9.0", "10.0", "12.0"], ["12.0"])


def test_tensorflow_build_info() -> None:
    data = b"build_info = collections.OrderedDict([('cuda_compute_capabilities', ['sm_35', 'sm_50', 'compute_80']), ('cuda_version', '11.2')])"
    assert archs_from_member("tensorflow", data) == (["3.5", "5.0"], ["8.0"])


def test_no_arch_record() -> None:
    assert archs_from_member("tensorflow", b"build_info = {'is_cuda_build': False}") is None
    assert archs_from_member("torch", b"no archs here sm_80") is None
    assert archs_from_member("jax", b"sm_80 sm_90") is None
