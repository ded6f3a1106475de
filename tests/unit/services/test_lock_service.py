"""`envctl lock` orchestration with resolvers that answer from a table (no network, no uv).

What is covered: reuse by content hash and by fingerprint, --check (fresh / stale), --upgrade,
a failed lock leaving the old file as it was, several platforms, the lock checks, and the
refusal to replace a lock envctl did not write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from envctl.adapters.lockfile import read_lock
from envctl.core.lock import LockOptions
from envctl.core.resolvers import (
    CondaRequest,
    PinnedCondaPackage,
    PinnedWheel,
    PipRequest,
    Resolvers,
)
from envctl.errors import InputError, LockCheckError, LockError, ResolveError
from envctl.services.lock.lock import lock_profile, lock_solution

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "lock"))

from lk_solutions import make_solution, platform_request

ROOT = Path(__file__).resolve().parents[3]
ON_X86 = "py3-none-manylinux_2_17_x86_64"
ON_ARM = "py3-none-manylinux_2_17_aarch64"


def _wheel(name: str, version: str, tag: str = "py3-none-any", deps: tuple[str, ...] = ()) -> PinnedWheel:
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    sha = hashlib.sha256(filename.encode()).hexdigest()
    return PinnedWheel(name, version, f"https://files.test/{filename}", sha, deps, "https://pypi.test/simple")


#: what uv would pin for torch 2.5.1 (CUDA 12.4) on each platform
CLOSURES = {
    "linux-64": (
        _wheel("filelock", "3.16.1"),
        _wheel("nvidia-cublas-cu12", "12.4.5.8", ON_X86),
        _wheel("nvidia-cuda-runtime-cu12", "12.4.127", ON_X86),
        _wheel("nvidia-cudnn-cu12", "9.1.0.70", ON_X86, ("nvidia-cublas-cu12",)),
        _wheel("nvidia-nccl-cu12", "2.21.5", ON_X86),
        _wheel("torch", "2.5.1", ON_X86, ("filelock", "nvidia-cudnn-cu12")),
    ),
    "linux-aarch64": (_wheel("filelock", "3.16.1"), _wheel("torch", "2.5.1", ON_ARM, ("filelock",))),
}
ZLIB = PinnedCondaPackage(
    "zlib", "1.3.1", "h0_0", "linux-64", "https://conda.test/linux-64/zlib-1.3.1-h0_0.conda",
    "b" * 32, "c" * 64, ("__glibc >=2.17",),
)  # fmt: skip


class TablePip:
    """A PipResolver answering each platform (by label) from a table; records every request."""

    def __init__(self, closures: dict[str, tuple[PinnedWheel, ...]] | None = None) -> None:
        self.closures = CLOSURES if closures is None else closures
        self.requests: list[PipRequest] = []
        self.error: Exception | None = None

    def resolve(self, request: PipRequest) -> tuple[PinnedWheel, ...]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        if request.label in self.closures:
            return self.closures[request.label]
        # any other request: each requirement pinned at its == version (or 1.0), no dependencies
        pinned = []
        for text in request.requirements:
            requirement = Requirement(text)
            version = next((s.version for s in requirement.specifier if s.operator == "=="), "1.0")
            pinned.append(_wheel(requirement.name, version))
        return tuple(pinned)


class TableConda:
    """A CondaSolver answering with fixed packages; records every request."""

    def __init__(self, packages: tuple[PinnedCondaPackage, ...] = (ZLIB,)) -> None:
        self.packages = packages
        self.requests: list[CondaRequest] = []

    def solve(self, request: CondaRequest) -> tuple[PinnedCondaPackage, ...]:
        self.requests.append(request)
        return self.packages


@pytest.fixture
def pip() -> TablePip:
    return TablePip()


@pytest.fixture
def conda() -> TableConda:
    return TableConda()


@pytest.fixture
def resolvers(pip: TablePip, conda: TableConda) -> Resolvers:
    return Resolvers(pip=pip, conda=conda)


def _lock(out: Path, resolvers: Resolvers, solution: object = None, **options: object):  # type: ignore[no-untyped-def]
    hashes = {"profile_hash": options.pop("profile_hash", "p1"), "matrix_hash": "m1"}
    return lock_solution(
        solution or make_solution(),  # type: ignore[arg-type]
        LockOptions(output=out, **options),  # type: ignore[arg-type]
        resolvers=resolvers,
        **hashes,  # type: ignore[arg-type]
    )


def _no_strays(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_a_lock_from_both_resolvers(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip, conda: TableConda
) -> None:
    request = platform_request(conda_channels=("https://conda.test/forge",), conda_specs=("zlib",))
    out = tmp_path / "conda-lock.yml"
    result = _lock(out, resolvers, make_solution(request), exclude_newer="2025-01-01T00:00:00Z")
    assert result.status == "written" and result.exclude_newer == "2025-01-01T00:00:00Z"
    (summary,) = result.platforms
    assert (summary.pip, summary.conda) == (6, 1)
    assert (summary.cuda, summary.cudnn, summary.nccl) == ("12.4", "9.1.0.70", "2.21.5")
    assert summary.frameworks == ("torch 2.5.1",)
    # what the resolvers were asked: the target's facts, never this machine's
    (asked,) = pip.requests
    assert asked.requirements == ("torch==2.5.1",) and asked.python_platform == "x86_64-manylinux_2_17"
    assert asked.exclude_newer == "2025-01-01T00:00:00Z" and asked.label == "linux-64"
    (solve,) = conda.requests
    assert solve.virtual_packages["__cuda"] == "12.4" and solve.virtual_packages["__glibc"] == "2.17"
    assert solve.exclude_newer == datetime(2025, 1, 1, tzinfo=timezone.utc)
    lock = read_lock(out)
    assert lock.written_by_envctl and lock.content_hash == result.content_hash
    assert lock.channels == ("https://conda.test/forge",)
    assert lock.solution["cuda"] == "12.4" and lock.framework_names == ("torch",)
    entries = {e.name: e for e in lock.entries}
    assert entries["zlib"].md5 == "b" * 32 and entries["zlib"].dependencies == (("__glibc", ">=2.17"),)
    assert dict(entries["torch"].dependencies) == {"filelock": "*", "nvidia-cudnn-cu12": "*"}


def test_unchanged_inputs_reuse_the_lock_without_resolving(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip
) -> None:
    out = tmp_path / "conda-lock.yml"
    first = _lock(out, resolvers)
    before = out.read_bytes()
    again = _lock(out, resolvers)
    assert again.status == "reused" and again.content_hash == first.content_hash
    assert again.platforms == first.platforms  # summaries come from the file
    assert len(pip.requests) == 1 and out.read_bytes() == before


def test_check_says_fresh_or_stale_and_writes_nothing(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip
) -> None:
    out = tmp_path / "conda-lock.yml"
    missing = _lock(out, resolvers, check=True)
    assert (missing.status, missing.reason) == ("stale", "no lockfile yet") and not out.exists()
    _lock(out, resolvers)
    before = out.read_bytes()
    assert _lock(out, resolvers, check=True).status == "fresh"
    stale = _lock(out, resolvers, check=True, profile_hash="p2")
    assert (stale.status, stale.reason) == ("stale", "inputs changed")
    assert len(pip.requests) == 1 and out.read_bytes() == before


def test_a_changed_input_relocks_with_the_recorded_cutoff(tmp_path: Path, resolvers: Resolvers) -> None:
    out = tmp_path / "conda-lock.yml"
    first = _lock(out, resolvers, exclude_newer="2025-01-01T00:00:00Z")
    relocked = _lock(out, resolvers, profile_hash="p2")
    assert relocked.status == "written" and relocked.reason == "inputs changed"
    assert relocked.exclude_newer == first.exclude_newer  # reproducible: the cutoff is kept
    assert relocked.content_hash != first.content_hash


def test_upgrade_moves_the_cutoff(tmp_path: Path, resolvers: Resolvers, pip: TablePip) -> None:
    out = tmp_path / "conda-lock.yml"
    _lock(out, resolvers, exclude_newer="2020-01-01T00:00:00Z")
    one = _lock(out, resolvers, upgrade=True, upgrade_packages=("filelock",))
    assert one.status == "written" and one.exclude_newer == "2020-01-01T00:00:00Z"
    ((name, when),) = pip.requests[-1].exclude_newer_packages
    assert name == "filelock" and when > "2020"
    assert read_lock(out).inputs.exclude_newer_packages == ((name, when),)  # type: ignore[union-attr]
    everything = _lock(out, resolvers, upgrade=True)
    assert everything.exclude_newer > "2020-01-01T00:00:00Z"
    assert pip.requests[-1].exclude_newer_packages == ()  # a full upgrade clears the exceptions
    assert len(pip.requests) == 3  # an upgrade always resolves, even with unchanged inputs


@pytest.mark.parametrize("failure", ["resolver", "lock check"])
def test_a_failed_lock_leaves_the_old_file(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip, failure: str
) -> None:
    out = tmp_path / "conda-lock.yml"
    _lock(out, resolvers)
    before = out.read_bytes()
    if failure == "resolver":
        pip.error = ResolveError("torch==9: no matching distribution")
        expected: type[Exception] = ResolveError
    else:  # a cuDNN other than the solution's
        pip.closures = {
            "linux-64": tuple(
                dataclasses.replace(w, version="9.3.0.75") if w.name == "nvidia-cudnn-cu12" else w
                for w in CLOSURES["linux-64"]
            )
        }
        expected = LockCheckError
    with pytest.raises(expected) as info:
        _lock(out, resolvers, profile_hash="p2")
    if failure == "lock check":
        assert "linux-64: cuDNN 9.1.0.70 expected but the lock has nvidia-cudnn-cu12 9.3.0.75" in str(
            info.value
        )
    assert out.read_bytes() == before
    assert _no_strays(tmp_path) == ["conda-lock.yml"]


def test_several_platforms_and_a_chosen_one(tmp_path: Path, resolvers: Resolvers, pip: TablePip) -> None:
    solution = make_solution(platform_request("linux-64"), platform_request("linux-aarch64"))
    out = tmp_path / "conda-lock.yml"
    result = _lock(out, resolvers, solution)
    assert [p.platform for p in result.platforms] == ["linux-64", "linux-aarch64"]
    assert sorted(r.label for r in pip.requests) == ["linux-64", "linux-aarch64"]
    lock = read_lock(out)
    assert lock.platforms == ("linux-64", "linux-aarch64")
    assert {e.name for e in lock.for_platform("linux-aarch64")} == {"torch", "filelock"}
    only = _lock(tmp_path / "one.yml", resolvers, solution, platforms=("linux-aarch64",))
    assert [p.platform for p in only.platforms] == ["linux-aarch64"]
    assert read_lock(tmp_path / "one.yml").platforms == ("linux-aarch64",)
    with pytest.raises(InputError, match="--platform osx-arm64: not a platform of profile lk-test"):
        _lock(tmp_path / "x.yml", resolvers, solution, platforms=("osx-arm64",))


def test_cuda_on_a_cpu_only_platform_fails_the_check(
    tmp_path: Path, pip: TablePip, conda: TableConda
) -> None:
    pip.closures = {
        "linux-aarch64": (*CLOSURES["linux-aarch64"], _wheel("nvidia-nccl-cu12", "2.21.5", ON_ARM))
    }
    with pytest.raises(LockCheckError, match="CPU-only platform linux-aarch64 pulls CUDA packages"):
        _lock(tmp_path / "l.yml", Resolvers(pip, conda), make_solution(platform_request("linux-aarch64")))
    assert not (tmp_path / "l.yml").exists()


def test_offline_and_local_channels_reach_the_resolvers(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip, conda: TableConda
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    request = platform_request(conda_channels=("https://conda.test/forge",), conda_specs=("zlib",))
    _lock(
        tmp_path / "l.yml",
        resolvers,
        make_solution(request),
        offline=True,
        find_links=(wheels,),
        channels=("file:///mirror",),
    )
    assert pip.requests[0].offline and pip.requests[0].find_links == (str(wheels.resolve()),)
    assert pip.requests[0].exclude_newer is None  # a wheelhouse has no upload times
    assert conda.requests[0].channels == ("file:///mirror",) and conda.requests[0].exclude_newer is None
    assert read_lock(tmp_path / "l.yml").channels == ("file:///mirror",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exclude_newer": "yesterday"}, "--exclude-newer yesterday: not an RFC 3339 time"),
        ({"offline": True}, "--offline needs --find-links DIR"),
        (
            {"find_links": (Path("/nonexistent/wheels"),)},
            "--find-links /nonexistent/wheels: no such directory",
        ),
    ],
)
def test_bad_sources_are_input_errors_before_resolving(
    tmp_path: Path, resolvers: Resolvers, pip: TablePip, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        _lock(tmp_path / "l.yml", resolvers, **options)
    assert pip.requests == []


def test_a_lock_envctl_did_not_write_is_never_replaced(tmp_path: Path, resolvers: Resolvers) -> None:
    out = tmp_path / "conda-lock.yml"
    _lock(out, resolvers)
    import yaml

    raw = yaml.safe_load(out.read_text())
    raw["metadata"]["custom_metadata"] = None  # as conda-lock writes it
    out.write_text(yaml.safe_dump(raw))
    before = out.read_bytes()
    with pytest.raises(LockError, match="was not written by envctl lock") as info:
        _lock(out, resolvers)
    assert "--output" in (info.value.hint or "")
    stale = _lock(out, resolvers, check=True)
    assert stale.status == "stale" and "not written by envctl lock" in stale.reason
    assert out.read_bytes() == before


def test_a_corrupt_lock_is_reported_not_replaced(tmp_path: Path, resolvers: Resolvers) -> None:
    out = tmp_path / "conda-lock.yml"
    out.write_text("version: 1\nmetadata: [\n")
    with pytest.raises(LockError, match="corrupt lockfile") as info:
        _lock(out, resolvers)
    assert info.value.hint == f"remove {out} to lock from scratch"
    stale = _lock(out, resolvers, check=True)
    assert stale.status == "stale" and "corrupt lockfile" in stale.reason


def test_lock_profile_skips_the_solver_when_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "demo.toml"
    profile.write_text((ROOT / "profiles" / "demo-cpu.toml").read_text())
    out = tmp_path / "conda-lock.yml"
    pip = TablePip(closures={})
    resolvers = Resolvers(pip=pip, conda=TableConda(()))
    first = lock_profile(profile, LockOptions(output=out), resolvers=resolvers)
    assert first.status == "written" and len(pip.requests) == 1
    assert {e.name for e in read_lock(out).entries} == {"jax"}

    import envctl.services.solve.solve as solve

    def no_solver(*args: object, **kwargs: object) -> None:
        raise AssertionError("the solver ran although the profile did not change")

    with monkeypatch.context() as patch:
        patch.setattr(solve, "solve_profile_file", no_solver)
        again = lock_profile(profile, LockOptions(output=out), resolvers=resolvers)
        checked = lock_profile(profile, LockOptions(output=out, check=True), resolvers=resolvers)
    assert (again.status, checked.status) == ("reused", "fresh")
    assert again.platforms == first.platforms and again.content_hash == first.content_hash

    # a comment changes the fingerprint, not the content: solved again, then reused
    profile.write_text(profile.read_text() + "# a comment\n")
    commented = lock_profile(profile, LockOptions(output=out), resolvers=resolvers)
    assert commented.status == "reused" and len(pip.requests) == 1
    # --upgrade never takes the fingerprint's shortcut
    upgraded = lock_profile(profile, LockOptions(output=out, upgrade=True), resolvers=resolvers)
    assert upgraded.status == "written" and len(pip.requests) == 2

    from envctl.adapters import ledger

    outcomes = [event.outcome for event in ledger.events("lock")]
    assert sorted(outcomes) == sorted(["written", "reused", "fresh", "reused", "written"])


def test_progress_names_each_step_and_each_platform(tmp_path: Path, resolvers: Resolvers) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
    from progress_recorder import RecordingProgress

    arm = platform_request(platform="linux-aarch64", python_platform="aarch64-manylinux_2_17")
    x86 = platform_request(conda_channels=("https://conda.test/forge",), conda_specs=("zlib",))
    progress = RecordingProgress()
    out = tmp_path / "conda-lock.yml"
    lock_solution(
        make_solution(x86, arm),
        LockOptions(output=out),
        resolvers=resolvers,
        profile_hash="p1",
        matrix_hash="m1",
        progress=progress,
    )
    assert progress.phases == [
        "resolve linux-64, linux-aarch64 (uv, rattler)",
        "check the closure against the solution",
        f"write {out}",
    ]
    assert progress.finished == {
        "linux-64": "6 pip + 1 conda files",
        "linux-aarch64": "2 pip + 0 conda files",
    }
    notes = [c[1] for c in progress.calls if c[0] == "note"]
    assert sorted(notes) == sorted(
        [
            "linux-64: conda solve (rattler) from https://conda.test/forge",
            "linux-64: 1 conda packages",
            "linux-64: pip resolve (uv) from PyPI",
            "linux-64: 6 pip files",
            "linux-aarch64: pip resolve (uv) from PyPI",
            "linux-aarch64: 2 pip files",
        ]
    )
    # a reused lock resolves nothing and reports no step
    quiet = RecordingProgress()
    lock_solution(
        make_solution(x86, arm), LockOptions(output=out), resolvers=resolvers, profile_hash="p1",
        matrix_hash="m1", progress=quiet,
    )  # fmt: skip
    assert quiet.calls == []


def test_a_failed_platform_is_reported_failed(tmp_path: Path, resolvers: Resolvers, pip: TablePip) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
    from progress_recorder import RecordingProgress

    pip.error = ResolveError("no torch for you")
    progress = RecordingProgress()
    with pytest.raises(ResolveError):
        lock_solution(
            make_solution(), LockOptions(output=tmp_path / "l.yml"), resolvers=resolvers,
            profile_hash="p1", matrix_hash="m1", progress=progress,
        )  # fmt: skip
    assert progress.finished == {"linux-64": "failed"}
