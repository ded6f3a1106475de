"""envctl lock against real uv and rattler, on local indexes and a local conda channel."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lk_solutions import make_solution, platform_request

from envctl.adapters.lockfile import read_lock
from envctl.core.lock import LockOptions
from envctl.core.solution import IndexPin
from envctl.errors import InputError, LockCheckError, ResolveError
from envctl.services.lock.lock import lock_solution

from .conftest import LockWorld

pytestmark = pytest.mark.integration


def _opts(world: LockWorld, out: Path, **kw: object) -> LockOptions:
    return LockOptions(output=out, index_url=world.pypi, **kw)  # type: ignore[arg-type]


def test_two_platforms_pinned_and_hashed(lock_world: LockWorld, tmp_path: Path) -> None:
    solution = make_solution(
        platform_request(
            "linux-64",
            conda_channels=(lock_world.channel_url,),
            conda_specs=("zlib", "cuda-version"),
        ),
        platform_request("linux-aarch64", conda_channels=(lock_world.channel_url,), conda_specs=("zlib",)),
    )
    out = tmp_path / "conda-lock.yml"
    result = lock_solution(solution, _opts(lock_world, out), profile_hash="p1", matrix_hash="m1")
    assert result.status == "written"
    lock = read_lock(out)
    x86 = {e.name: e for e in lock.for_platform("linux-64")}
    arm = {e.name: e for e in lock.for_platform("linux-aarch64")}
    assert x86["nvidia-cudnn-cu12"].version == "9.1.0.70"
    assert x86["nvidia-cuda-runtime-cu12"].version == "12.4.127"
    assert x86["nvidia-cublas-cu12"].version == "12.4.5.8"  # transitive, via cudnn
    assert "manylinux_2_17_x86_64" in x86["torch"].filename
    assert "manylinux_2_17_aarch64" in arm["torch"].filename
    assert not [n for n in arm if n.startswith("nvidia-")]
    assert x86["zlib"].manager == "conda" and x86["zlib"].url.endswith("linux-64/zlib-1.3.1-h0_0.conda")
    assert arm["zlib"].url.endswith("linux-aarch64/zlib-1.3.1-h0_0.conda")
    assert "cuda-version" in x86  # __cuda came from the request: this machine has no GPU
    # every hash is the sha256 of the exact file served
    for entry in lock.entries:
        if entry.manager == "pip":
            assert entry.url.startswith(lock_world.pypi)
            data = lock_world.wheels[entry.filename].read_bytes()
            assert entry.sha256 == hashlib.sha256(data).hexdigest()
        else:
            data = Path(entry.url.removeprefix("file://")).read_bytes()
            assert entry.md5 == hashlib.md5(data).hexdigest()
            assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert dict(x86["torch"].dependencies).keys() >= {"nvidia-cudnn-cu12", "filelock"}
    assert lock.solution["cuda"] == "12.4"
    assert lock.inputs.exclude_newer == result.exclude_newer
    summary = {p.platform: p for p in result.platforms}
    assert summary["linux-64"].cuda == "12.4" and summary["linux-aarch64"].cuda is None
    assert summary["linux-64"].frameworks == ("torch 2.5.1",)


def test_reuse_and_stale(lock_world: LockWorld, tmp_path: Path) -> None:
    out = tmp_path / "conda-lock.yml"
    solution = make_solution()
    first = lock_solution(solution, _opts(lock_world, out), profile_hash="p1", matrix_hash="m1")
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    again = lock_solution(solution, _opts(lock_world, out), profile_hash="p1", matrix_hash="m1")
    assert again.status == "reused" and again.content_hash == first.content_hash
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert again.platforms[0].pip == first.platforms[0].pip
    fresh = lock_solution(solution, _opts(lock_world, out, check=True), profile_hash="p1", matrix_hash="m1")
    assert fresh.status == "fresh"
    stale = lock_solution(solution, _opts(lock_world, out, check=True), profile_hash="p2", matrix_hash="m1")
    assert stale.status == "stale" and stale.reason == "inputs changed"
    assert out.read_bytes() == before[0]  # --check never writes
    relocked = lock_solution(solution, _opts(lock_world, out), profile_hash="p2", matrix_hash="m1")
    assert relocked.status == "written" and relocked.exclude_newer == first.exclude_newer  # reproducible


def test_exclude_newer_and_upgrade(lock_world: LockWorld, tmp_path: Path) -> None:
    out = tmp_path / "conda-lock.yml"
    solution = make_solution(platform_request(requirements=("filelock",), cuda=None, cudnn=None, nccl=None))
    old = lock_solution(
        solution,
        _opts(lock_world, out, exclude_newer="2025-01-01T00:00:00Z"),
        profile_hash="p",
        matrix_hash="m",
    )
    assert [e.version for e in read_lock(out).entries] == ["3.16.1"]
    assert old.exclude_newer == "2025-01-01T00:00:00Z"
    upgraded = lock_solution(
        solution,
        _opts(lock_world, out, upgrade=True, upgrade_packages=("filelock",)),
        profile_hash="p",
        matrix_hash="m",
    )
    lock = read_lock(out)
    assert [e.version for e in lock.entries] == ["3.17.0"]
    assert upgraded.exclude_newer == "2025-01-01T00:00:00Z"  # global cutoff stays, only filelock moved
    assert [name for name, _ in lock.inputs.exclude_newer_packages] == ["filelock"]


def test_framework_index_and_local_label(lock_world: LockWorld, tmp_path: Path) -> None:
    pin = IndexPin("torch", lock_world.cu121, "cu121")
    request = platform_request(requirements=("torch==2.5.1+cu121",), indexes=(pin,), cuda="12.1", nccl=None)
    out = tmp_path / "conda-lock.yml"
    lock_solution(make_solution(request), _opts(lock_world, out), profile_hash="p", matrix_hash="m")
    entries = {e.name: e for e in read_lock(out).entries}
    assert entries["torch"].version == "2.5.1+cu121"
    assert entries["torch"].url.startswith(lock_world.cu121)
    assert entries["torch"].url.endswith("/torch-2.5.1%2Bcu121-cp312-cp312-linux_x86_64.whl")
    assert entries["nvidia-cuda-runtime-cu12"].version == "12.1.105"
    assert entries["filelock"].url.startswith(lock_world.pypi)  # the explicit index serves torch only


def test_wrong_local_label_is_refused(lock_world: LockWorld, tmp_path: Path) -> None:
    # The pin says cu121, but the index behind it serves +cpu builds: `==2.5.1` accepts any label.
    pin = IndexPin("torch", lock_world.cpu, "cu121")
    request = platform_request(requirements=("torch==2.5.1",), indexes=(pin,))
    out = tmp_path / "conda-lock.yml"
    with pytest.raises(LockCheckError, match=r"torch 2\.5\.1\+cpu is the wrong build: expected \+cu121"):
        lock_solution(make_solution(request), _opts(lock_world, out), profile_hash="p", matrix_hash="m")
    assert not out.exists()


def test_cuda_minor_mixing_is_refused(lock_world: LockWorld, tmp_path: Path) -> None:
    request = platform_request(requirements=("torch==2.5.1", "tensorflow[and-cuda]==2.18.0"))
    with pytest.raises(LockCheckError) as info:
        lock_solution(
            make_solution(request),
            _opts(lock_world, tmp_path / "l.yml"),
            profile_hash="p",
            matrix_hash="m",
        )
    message = info.value.message
    assert "mixes CUDA minor versions" in message
    assert "nvidia-cuda-nvcc-cu12 12.9.86" in message and "nvidia-cuda-runtime-cu12 12.4.127" in message


def test_cudnn_pin_mismatch_is_refused(lock_world: LockWorld, tmp_path: Path) -> None:
    request = platform_request(cudnn="9.5.1.17")
    with pytest.raises(
        LockCheckError,
        match=r"cuDNN 9\.5\.1\.17 expected but the lock has nvidia-cudnn-cu12 9\.1\.0\.70",
    ):
        lock_solution(
            make_solution(request),
            _opts(lock_world, tmp_path / "l.yml"),
            profile_hash="p",
            matrix_hash="m",
        )


def test_glibc_floor_violation_is_refused(lock_world: LockWorld, tmp_path: Path) -> None:
    # uv may pick manylinux_2_28 wheels for this python platform; the nodes only have glibc 2.17.
    request = platform_request(
        requirements=("mkl",),
        python_platform="x86_64-manylinux_2_28",
        cuda=None,
        cudnn=None,
        nccl=None,
    )
    with pytest.raises(
        LockCheckError,
        match=r"glibc 2\.17.*mkl-2025\.0\.0-py2\.py3-none-manylinux_2_28_x86_64\.whl",
    ):
        lock_solution(
            make_solution(request),
            _opts(lock_world, tmp_path / "l.yml"),
            profile_hash="p",
            matrix_hash="m",
        )


def test_failed_relock_leaves_old_lock_untouched(lock_world: LockWorld, tmp_path: Path) -> None:
    out = tmp_path / "conda-lock.yml"
    lock_solution(make_solution(), _opts(lock_world, out), profile_hash="p1", matrix_hash="m")
    before = out.read_bytes()
    bad = make_solution(platform_request(requirements=("torch==2.5.1", "tensorflow[and-cuda]==2.18.0")))
    with pytest.raises(LockCheckError):
        lock_solution(bad, _opts(lock_world, out), profile_hash="p2", matrix_hash="m")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conda-lock.yml"]  # no temp file left


def test_offline_wheelhouse_and_local_channel(
    lock_world: LockWorld, tmp_path: Path, closed_port: int
) -> None:
    request = platform_request(
        conda_channels=("https://conda.anaconda.org/conda-forge",), conda_specs=("zlib",)
    )
    out = tmp_path / "conda-lock.yml"
    options = LockOptions(
        output=out,
        offline=True,
        find_links=(lock_world.wheelhouse,),
        channels=(lock_world.channel_url,),
        # ignored offline: nothing is contacted
        index_url=f"http://127.0.0.1:{closed_port}/simple/",
    )
    lock_solution(make_solution(request), options, profile_hash="p", matrix_hash="m")
    lock = read_lock(out)
    urls = [e.url for e in lock.entries]
    assert all(u.startswith("file://") for u in urls), urls
    assert {e.name for e in lock.entries} >= {"torch", "nvidia-cudnn-cu12", "zlib"}
    assert lock.channels == (lock_world.channel_url,)


def test_virtual_packages_come_from_the_target(lock_world: LockWorld, tmp_path: Path) -> None:
    # cuda-version needs __cuda: the CPU-only target has none, whatever this machine has
    request = platform_request(
        "linux-aarch64",
        requirements=(),
        conda_channels=(lock_world.channel_url,),
        conda_specs=("cuda-version",),
    )
    with pytest.raises(ResolveError, match=r"conda specs unsatisfiable for linux-aarch64.*__cuda"):
        lock_solution(
            make_solution(request), _opts(lock_world, tmp_path / "l.yml"), profile_hash="p", matrix_hash="m"
        )
    old_driver = platform_request(
        requirements=(),
        conda_channels=(lock_world.channel_url,),
        conda_specs=("cuda-version",),
        virtual_packages={"__cuda": "12.1"},  # the nodes' driver only offers CUDA 12.1
    )
    with pytest.raises(ResolveError, match="__cuda"):
        lock_solution(
            make_solution(old_driver),
            _opts(lock_world, tmp_path / "l.yml"),
            profile_hash="p",
            matrix_hash="m",
        )
    assert not (tmp_path / "l.yml").exists()


def test_offline_refuses_network_sources(lock_world: LockWorld, tmp_path: Path) -> None:
    out = tmp_path / "conda-lock.yml"
    with pytest.raises(InputError, match="--offline needs --find-links"):
        lock_solution(
            make_solution(), LockOptions(output=out, offline=True), profile_hash="p", matrix_hash="m"
        )
    remote = platform_request(
        conda_channels=("https://conda.anaconda.org/conda-forge",), conda_specs=("zlib",)
    )
    options = LockOptions(output=out, offline=True, find_links=(lock_world.wheelhouse,))
    with pytest.raises(InputError, match=r"--offline needs local channels, got https://conda\.anaconda\.org"):
        lock_solution(make_solution(remote), options, profile_hash="p", matrix_hash="m")
    assert not out.exists()


def test_uv_environment_cannot_steer_the_lock(
    lock_world: LockWorld, tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_INDEX_URL", f"http://127.0.0.1:{closed_port}/simple/")
    monkeypatch.setenv("UV_EXCLUDE_NEWER", "2000-01-01T00:00:00Z")
    monkeypatch.setenv("UV_NO_INDEX", "1")
    out = tmp_path / "conda-lock.yml"
    lock_solution(make_solution(), _opts(lock_world, out), profile_hash="p", matrix_hash="m")
    assert {e.name for e in read_lock(out).entries} >= {"torch", "nvidia-cudnn-cu12"}


def test_without_uv_cache_the_second_pass_goes_online(
    lock_world: LockWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_NO_CACHE", "1")  # the offline pass finds nothing and must fall back
    out = tmp_path / "conda-lock.yml"
    lock_solution(make_solution(), _opts(lock_world, out), profile_hash="p", matrix_hash="m")
    torch = {e.name: e for e in read_lock(out).entries}["torch"]
    assert ("nvidia-cudnn-cu12", "*") in torch.dependencies  # edges came from the second pass
