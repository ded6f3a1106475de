"""What an image records it needs (from a lock and the matrix), read back, and held against a node."""

from __future__ import annotations

import pytest

from envctl.adapters.matrix_files import load_matrix
from envctl.core.facts_parse import GpuFacts
from envctl.core.image_needs import ImageNeeds, glibc_floor, needs_labels, needs_of, read_needs, refusals
from envctl.core.lock import LockedEnv, LockEntry
from envctl.core.matrix import Matrix
from envctl.core.node_facts import Disk, NodeFacts


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def wheel(name: str, filename: str) -> LockEntry:
    return LockEntry("pip", name, "1", "linux-64", f"https://files.example/{filename}", sha256="0" * 64)


def env(*files: LockEntry, solution: dict[str, object] | None = None) -> LockedEnv:
    return LockedEnv("conda-lock.yml", "linux-64", files, "sha256:abc", "3.11", 0, solution or {})


def gpu(name: str, cc: str) -> GpuFacts:
    return GpuFacts(0, name, None, cc, 81920, None, "550.54.15", None, None)


NODE = NodeFacts(
    glibc="2.36",
    arch="x86_64",
    cpu_model="Intel(R) Xeon(R)",
    cpu_flags=("avx", "avx2"),
    store=Disk("/var/lib/envctl", 10 << 30, 100 << 30),
)


@pytest.mark.parametrize(
    ("filename", "floor"),
    [
        ("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", (2, 17)),
        ("torch-2.5.1-cp311-cp311-manylinux_2_28_x86_64.whl", (2, 28)),
        ("six-1.16.0-py2.py3-none-any.whl", None),
        ("old-1.0-cp27-cp27mu-manylinux1_x86_64.whl", (2, 5)),
        ("pkg-1.0.tar.bz2", None),
    ],
)
def test_glibc_floor_of_a_wheel_is_its_lowest_manylinux_tag(
    filename: str, floor: tuple[int, int] | None
) -> None:
    assert glibc_floor(filename) == floor


def test_needs_take_the_highest_floor_and_tensorflows_avx() -> None:
    e = env(
        wheel("numpy", "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        wheel("tensorflow", "tensorflow-2.17.0-cp311-cp311-manylinux_2_34_x86_64.whl"),
        solution={"frameworks": {"tensorflow": "2.17.0"}},
    )
    needs = needs_of(e, None, "amd64", 5000)
    assert needs == ImageNeeds(arch="amd64", glibc="2.34", cpu_flags=("avx",), unpacked=5000)
    assert needs_of(e, None, "arm64", 1).cpu_flags == ()  # AVX is an x86 flag


def test_a_cuda_lock_records_its_driver_and_the_builds_gpu_archs(matrix: Matrix) -> None:
    e = env(solution={"cuda": "12.4", "min_driver": "550.54.14", "frameworks": {"torch": "2.5.1"}})
    needs = needs_of(e, matrix, "amd64", 1)
    assert needs.min_driver == "550.54.14" and needs.cuda == "12.4"
    assert "9.0" in needs.gpu_archs and "8.0" in needs.gpu_archs
    # without the lock's driver, the matrix's floor for the CUDA toolkit stands in
    assert needs_of(env(solution={"cuda": "12.4"}), matrix, "amd64", 1).min_driver is not None


def test_labels_read_back_to_the_same_needs() -> None:
    needs = ImageNeeds("arm64", "12.4", "550.54.14", ("8.0", "9.0"), ("9.0",), "2.28", (), 123456)
    config = {"architecture": "arm64", "config": {"Labels": {"other": "x", **needs_labels(needs)}}}
    assert read_needs(config) == needs
    assert read_needs({"architecture": "amd64", "config": {"Labels": {"other": "x"}}}) is None
    assert read_needs({}) is None
    assert all(isinstance(v, str) for v in needs_labels(needs).values())  # canonical config


def test_a_node_that_meets_every_need_is_not_refused() -> None:
    assert refusals(ImageNeeds("amd64", glibc="2.34", cpu_flags=("avx",), unpacked=1 << 30), NODE) == ()


def test_each_unmet_need_is_a_reason_with_a_fix() -> None:
    needs = ImageNeeds("arm64", glibc="2.39", cpu_flags=("avx512f",), unpacked=20 << 30)
    found = {f.code: f for f in refusals(needs, NODE)}
    assert set(found) == {"arch", "glibc", "cpu-flags", "space"}
    assert found["glibc"].message == "glibc 2.36 is older than this image's 2.39 floor"
    assert found["arch"].message == "the image is linux/arm64; this node is x86_64"
    assert "--platform linux/amd64" in (found["arch"].fix or "")
    assert "lacks avx512f" in found["cpu-flags"].message
    assert "10.0 GiB free" in found["space"].message and "20.0 GiB" in found["space"].message
    assert all(f.fix and f.level == "fail" for f in found.values())


def test_unknown_facts_refuse_nothing() -> None:
    needs = ImageNeeds("amd64", "12.4", "550.54.14", ("9.0",), (), "2.34", ("avx",), 1 << 40)
    assert refusals(needs, NodeFacts()) == ()


def test_gpus_are_held_against_the_driver_and_the_kernels() -> None:
    needs = ImageNeeds("amd64", cuda="12.4", min_driver="550.54.14", gpu_archs=("8.0", "9.0"), ptx=())
    old = NodeFacts(arch="x86_64", driver="535.104.05", gpus=(gpu("NVIDIA H100", "9.0"),))
    (driver,) = refusals(needs, old)
    assert (
        driver.code == "driver"
        and "535.104.05 is older than this image's minimum 550.54.14" in driver.message
    )
    assert "R550" in (driver.fix or "")
    sm86 = NodeFacts(arch="x86_64", driver="560.35.03", gpus=(gpu("NVIDIA A10", "8.6"),))
    assert refusals(needs, sm86) == ()  # sm_80 SASS runs on 8.6
    blackwell = NodeFacts(arch="x86_64", driver="570.133.20", gpus=(gpu("NVIDIA B200", "10.0"),))
    (arch,) = refusals(needs, blackwell)
    assert arch.code == "gpu-arch" and "B200 (CC 10.0) has no kernels" in arch.message
    assert refusals(ImageNeeds("amd64", cuda="12.4", gpu_archs=("9.0",), ptx=("9.0",)), blackwell) == ()
    # a CUDA image on a node without GPUs runs on its CPU: nothing to refuse
    assert refusals(needs, NodeFacts(arch="x86_64")) == ()
