"""`envctl lock` / `envctl export` through the real CLI entry point (envctl.cli:main).

The solver is replaced by a shim that maps a profile file to a hand-built Solution: these tests
are about locking, and the real solver's requests point at PyPI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from lk_solutions import make_solution, platform_request

from envctl.adapters.lockfile import read_lock
from envctl.cli import main
from envctl.core.solution import Solution

from .conftest import LockWorld

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration

Run = Callable[..., tuple[int, str, str]]
SOLVER_CALLS: list[str] = []


@dataclass(frozen=True)
class _Outcome:
    solution: Solution
    profile_hash: str
    matrix_hash: str


@pytest.fixture
def solutions(monkeypatch: pytest.MonkeyPatch) -> dict[str, Solution]:
    """profile file name -> Solution returned by the solver shim."""
    table: dict[str, Solution] = {}

    def solve_profile_file(path: Path, **_: object) -> _Outcome:
        SOLVER_CALLS.append(path.name)
        # like the real solver: comments do not change the profile hash
        text = b"".join(line for line in path.read_bytes().splitlines() if not line.startswith(b"#"))
        return _Outcome(table[path.name], hashlib.sha256(text).hexdigest(), "m" * 64)

    shim = types.ModuleType("envctl.services.solve.solve")
    shim.solve_profile_file = solve_profile_file  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "envctl.services.solve.solve", shim)
    return table


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        if "--json" in args:  # every document: the envelope, and an exit status that agrees with it
            doc = json.loads(out)
            assert_envelope(doc, code, "envctl.error/1" if "error_class" in doc else f"envctl.{args[0]}/1")
        return code, out, err

    return _run


def _profile(tmp_path: Path, name: str, solutions: dict[str, Solution], solution: Solution) -> Path:
    path = tmp_path / name
    path.write_text(f'[profile]\nname = "{name}"\n')
    solutions[name] = solution
    return path


def _one_error(err: str) -> str:
    # the progress lines of a pipe ("envctl lock: resolve ...") come first; the error is one line
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("envctl lock: ")]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and len(lines) <= 2, err
    assert lines[-1].startswith("hint:"), err
    return errors[0]


def test_lock_json_reuse_and_check(
    lock_world: LockWorld, tmp_path: Path, solutions: dict[str, Solution], run: Run
) -> None:
    profile = _profile(
        tmp_path,
        "p.toml",
        solutions,
        make_solution(platform_request("linux-64"), platform_request("linux-aarch64")),
    )
    out = tmp_path / "conda-lock.yml"
    args = ("lock", str(profile), "-o", str(out), "--index-url", lock_world.pypi)
    code, stdout, _ = run(*args, "--json")
    assert code == 0
    first = json.loads(stdout)
    assert first["schema"] == "envctl.lock/1" and first["status"] == "written"
    assert [p["platform"] for p in first["platforms"]] == ["linux-64", "linux-aarch64"]
    SOLVER_CALLS.clear()
    code, stdout, _ = run(*args, "--json")
    assert code == 0 and json.loads(stdout)["status"] == "reused"
    assert json.loads(stdout)["platforms"] == first["platforms"]
    code, stdout, _ = run(*args)
    assert code == 0 and "up to date" in stdout and "linux-aarch64" in stdout
    assert run(*args, "--check")[0] == 0
    assert SOLVER_CALLS == []  # same bytes, same options: no need to solve again
    profile.write_text(profile.read_text() + "# a comment\n")
    code, stdout, _ = run(*args, "--json")
    assert code == 0 and json.loads(stdout)["status"] == "reused"  # solved again, same content
    assert SOLVER_CALLS == ["p.toml"]
    profile.write_text(profile.read_text() + "[extra]\n")
    code, stdout, _ = run(*args, "--check", "--json")
    assert code == 1 and json.loads(stdout)["status"] == "stale"


@pytest.mark.parametrize(
    ("requirements", "index", "message"),
    [
        (("torchh==2.5.1",), None, "unknown package torchh"),
        (("torch==9.9.9",), None, "no version of torch==9.9.9"),
        (("torch==2.5.1",), "closed", "cannot reach index http://127.0.0.1:"),
        (("tensorflow[and-cuda]==9.9",), None, "no version of tensorflow[and-cuda]==9.9 fits"),
    ],
    ids=["unknown-package", "unsatisfiable", "unreachable-index", "brackets-survive"],
)
def test_lock_bad_inputs_are_one_line(
    lock_world: LockWorld,
    tmp_path: Path,
    solutions: dict[str, Solution],
    run: Run,
    closed_port: int,
    requirements: tuple[str, ...],
    index: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # a refused connection needs no back-off here
    profile = _profile(
        tmp_path, "p.toml", solutions, make_solution(platform_request(requirements=requirements))
    )
    out = tmp_path / "out" / "conda-lock.yml"
    url = f"http://127.0.0.1:{closed_port}/simple/" if index == "closed" else lock_world.pypi
    code, _, err = run("lock", str(profile), "-o", str(out), "--index-url", url)
    assert code == 1
    assert message in _one_error(err)
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_corrupt_and_unknown_version_lockfiles(
    tmp_path: Path, solutions: dict[str, Solution], run: Run
) -> None:
    corrupt = tmp_path / "corrupt.yml"
    corrupt.write_text("version: 1\nmetadata: {content_hash: [\n")
    future = tmp_path / "future.yml"
    future.write_text("version: 7\nmetadata: {}\npackage: []\n")
    for path, message in (
        (corrupt, "corrupt lockfile"),
        (future, "lockfile version 7 is not supported"),
    ):
        before = path.read_bytes()
        code, _, err = run("export", str(path), "--format", "requirements", "-o", str(tmp_path / "req.txt"))
        assert code == 2 and message in _one_error(err)
        profile = _profile(tmp_path, "p.toml", solutions, make_solution())
        code, _, err = run("lock", str(profile), "-o", str(path))
        assert code == 2 and message in _one_error(err)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.yml", "future.yml", "p.toml"]


def test_export_formats_install_and_parse(
    lock_world: LockWorld, tmp_path: Path, solutions: dict[str, Solution], run: Run
) -> None:
    solution = make_solution(
        platform_request("linux-64", conda_channels=(lock_world.channel_url,), conda_specs=("zlib",))
    )
    # pylock.toml records requires-python; uv checks it against the interpreter it installs for
    solution = dataclasses.replace(solution, python=f"{sys.version_info.major}.{sys.version_info.minor}")
    profile = _profile(tmp_path, "p.toml", solutions, solution)
    lock = tmp_path / "conda-lock.yml"
    assert run("lock", str(profile), "-o", str(lock), "--index-url", lock_world.pypi)[0] == 0
    entries = {e.name: e for e in read_lock(lock).entries}

    req = tmp_path / "requirements.txt"
    code, stdout, _ = run("export", str(lock), "--format", "requirements", "-o", str(req), "--json")
    assert code == 0 and json.loads(stdout)["packages"] == 6
    assert f"--hash=sha256:{entries['torch'].sha256}" in req.read_text()
    # the real installer accepts it in hash-checking mode and fetches the exact files
    from uv import find_uv_bin

    target = tmp_path / "site"
    subprocess.run(
        [*_install(find_uv_bin(), target), "--no-deps", "--require-hashes", "-r", str(req)],
        check=True,
        capture_output=True,
    )
    assert (target / "torch" / "__init__.py").read_text() == '__version__ = "2.5.1"\n'

    code, text, _ = run("export", str(lock), "--format", "pylock")
    assert code == 0
    from packaging.pylock import Pylock

    from envctl.adapters.files import tomllib  # tomli on 3.10

    pylock = Pylock.from_dict(tomllib.loads(text))
    by_name = {p.name: p for p in pylock.packages}
    assert by_name["torch"].wheels[0].hashes["sha256"] == entries["torch"].sha256  # type: ignore[index]
    assert {d["name"] for d in by_name["torch"].dependencies or ()} >= {
        "nvidia-cudnn-cu12",
        "filelock",
    }
    (tmp_path / "pylock.toml").write_text(text)
    target2 = tmp_path / "site2"
    subprocess.run(
        [*_install(find_uv_bin(), target2), "-r", str(tmp_path / "pylock.toml")],
        check=True,
        capture_output=True,
    )
    assert (target2 / "nvidia_cudnn_cu12" / "__init__.py").exists()

    code, text, _ = run("export", str(lock), "--format", "explicit", "--platform", "linux-64")
    assert code == 0
    lines = text.splitlines()
    assert "@EXPLICIT" in lines
    conda_lines = [line for line in lines if line.startswith("file://")]
    assert conda_lines == [f"{entries['zlib'].url}#{entries['zlib'].md5}"]
    data = Path(entries["zlib"].url.removeprefix("file://")).read_bytes()
    assert hashlib.md5(data).hexdigest() == entries["zlib"].md5

    code, _, err = run("export", str(lock), "--format", "explicit", "--platform", "linux-aarch64")
    assert code == 2 and "covers only linux-64" in _one_error(err)


def _install(uv: str, target: Path) -> list[str]:
    """uv pip install into ``target`` for the linux-64 target, ignoring this machine's config."""
    platform = ["--python-platform", "x86_64-manylinux_2_17", "--python-version", "3.12"]
    return [uv, "pip", "install", "--no-config", "--target", str(target), *platform]


def test_matrix_change_is_noticed_without_a_profile_change(
    lock_world: LockWorld,
    tmp_path: Path,
    solutions: dict[str, Solution],
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    matrix = tmp_path / "matrix"
    shutil.copytree(Path(__file__).parents[3] / "compat_matrix", matrix)
    monkeypatch.setenv("ENVCTL_MATRIX", str(matrix))
    profile = _profile(tmp_path, "p.toml", solutions, make_solution())
    args = ("lock", str(profile), "-o", str(tmp_path / "conda-lock.yml"), "--index-url", lock_world.pypi)
    assert run(*args)[0] == 0
    SOLVER_CALLS.clear()
    assert run(*args)[0] == 0 and SOLVER_CALLS == []
    (matrix / "cuda.toml").write_text((matrix / "cuda.toml").read_text() + "\n# new row\n")
    assert run(*args)[0] == 0 and SOLVER_CALLS == ["p.toml"]  # the matrix bytes changed: solve
