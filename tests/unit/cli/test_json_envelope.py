"""Every command's ``--json`` through the real entry point: the envelope and the exit-code rule.

Each command that ``envctl --help`` lists (subcommands too) runs here once on bad input (exit 2,
an ``envctl.error/1`` document) and once where it can succeed without nodes, an engine, root or
the network. Commands that need those are run to success by the integration test named in their
case, which asserts the same envelope.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from envctl import __version__
from envctl.cli import main
from envctl.errors import EnvctlError

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
SMALL = str(FIXTURES / "matrix_small")
sys.path.insert(0, str(FIXTURES))
sys.path.insert(0, str(FIXTURES / "build"))
sys.path.insert(0, str(FIXTURES / "matrix"))
from json_envelope import DOCUMENTED, ERROR, assert_envelope  # noqa: E402

PROFILE = '[environment]\nname = "p"\n[frameworks]\ntorch = ">=2.4"\n[targets]\ngpus = ["H100"]\ndriver = "550.54.15"\n'
EXCLUDE_NEWER = "2026-01-01T00:00:00Z"

Args = Callable[[Path, pytest.MonkeyPatch], list[str]]


@dataclass(frozen=True)
class Case:
    """How to run one command: to success (args, or the integration test that does) and to bad input."""

    schema: str
    success: Args | str
    bad_input: Args


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """``envctl ARGS`` through ``envctl.cli.main``; the exit status and the one document on stdout."""
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    return code, json.loads(out)  # exactly one document, nothing else on stdout


def with_json(command: str, args: list[str]) -> list[str]:
    words = command.split()
    return [*words, "--json", *args]  # before any `--`: after it, words belong to a remote command


def _profile(tmp: Path) -> Path:
    path = tmp / "p.toml"
    path.write_text(PROFILE)
    return path


def _inventory(tmp: Path) -> Path:
    path = tmp / "inv.toml"
    path.write_text('[nodes.n1]\nhost = "127.0.0.1"\n[groups.gpu]\nnodes = ["n1"]\n')
    return path


def _lock_with_one_wheel(tmp: Path) -> Path:
    from envctl.adapters.lockfile import write_lock
    from envctl.core.lock import LockData, LockEntry, LockInputs

    entry = LockEntry(
        "pip", "filelock", "3.16.1", "linux-64", "https://f/filelock-3.16.1-py3-none-any.whl", sha256="b" * 64
    )
    path = tmp / "conda-lock.yml"
    write_lock(
        path,
        LockData(
            platforms=("linux-64",),
            entries=(entry,),
            content_hash="e" * 64,
            inputs=LockInputs("p", "m", "s", EXCLUDE_NEWER, ("linux-64",)),
            envctl_version=__version__,
        ),
    )
    return path


def _lock_args(tmp: Path) -> list[str]:
    out = tmp / "conda-lock.yml"
    return [
        str(_profile(tmp)), "-o", str(out), "--check", "--platform", "linux-64",
        "--exclude-newer", EXCLUDE_NEWER, "--matrix", SMALL,
    ]  # fmt: skip


def _fresh_lock(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    """``lock --check`` on a lock whose content hash is the one the profile gives: fresh."""
    from envctl.adapters.lockfile import write_lock
    from envctl.core.lock import LockData, LockInputs, LockOptions
    from envctl.services.lock.lock import lock_profile

    args, out = _lock_args(tmp), tmp / "conda-lock.yml"
    options = LockOptions(output=out, check=True, exclude_newer=EXCLUDE_NEWER, platforms=("linux-64",))
    stale = lock_profile(Path(args[0]), options, matrix_dir=Path(SMALL))  # no lock yet: stale
    inputs = LockInputs("p", "m", "s", EXCLUDE_NEWER, ("linux-64",))
    lock = LockData(("linux-64",), (), stale.content_hash, inputs=inputs, envctl_version=__version__)
    write_lock(out, lock)
    return args


def _render_lock(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    import bd_wheels

    lock = bd_wheels.write_lock(tmp / "l.yml", bd_wheels.standard_wheels(tmp / "w", lib_mb=1))
    return [str(lock), "--dockerfile", str(tmp / "ctx"), "--cache-dir", str(tmp / "cache")]


def _recorded_refresh(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    from mx_index import RecordedIndex

    import envctl.adapters.pypi

    mp.setattr(envctl.adapters.pypi, "PyPIClient", lambda *a, **k: RecordedIndex())
    shutil.copytree(FIXTURES / "matrix" / "refresh", tmp / "m")
    return ["--framework", "torch", "--matrix", str(tmp / "m")]


def missing(name: str) -> Args:
    return lambda tmp, mp: [str(tmp / name)]


NODES = "tests/integration/nodes/test_cli_sandbox.py"


def _requirements(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    (tmp / "requirements.txt").write_text("torch>=2.4\nnumpy\n")
    return [str(tmp / "requirements.txt"), "-o", str(tmp / "p.toml"), "--gpu", "H100"]


CASES: dict[str, Case] = {
    "init": Case("envctl.init/1", _requirements, missing("requirements.txt")),
    "solve": Case(
        "envctl.solution/1", lambda t, mp: [str(_profile(t)), "--matrix", SMALL], missing("no.toml")
    ),
    "explain": Case(
        "envctl.explain/1", lambda t, mp: [str(_profile(t)), "--matrix", SMALL], missing("no.toml")
    ),
    "matrix validate": Case(
        "envctl.matrix-validate/1", lambda t, mp: ["--matrix", SMALL], lambda t, mp: ["--matrix", str(t)]
    ),
    "matrix show": Case(
        "envctl.matrix-show/1",
        lambda t, mp: ["torch", "--matrix", SMALL],
        lambda t, mp: ["mxnet", "--matrix", SMALL],  # was a text error under --json
    ),
    "matrix refresh": Case(
        "envctl.matrix-refresh/1", _recorded_refresh, lambda t, mp: ["--matrix", str(t / "none")]
    ),
    "lock": Case("envctl.lock/1", _fresh_lock, missing("no.toml")),
    "export": Case(
        "envctl.export/1",
        lambda t, mp: [str(_lock_with_one_wheel(t)), "--format", "requirements"],
        lambda t, mp: [str(_lock_with_one_wheel(t)), "--format", "pylock", "--platform", "win-64"],
    ),
    "build": Case("envctl.build/1", "tests/integration/images/test_build_engine.py", missing("no.yml")),
    "render": Case(
        "envctl.render/1", _render_lock, lambda t, mp: [str(t / "no.yml"), "--dockerfile", str(t)]
    ),
    "pack": Case(
        "envctl.pack/1",
        "tests/integration/hostenv/test_pack.py",
        lambda t, mp: [str(t / "no.yml"), "-o", str(t / "env.tar.gz")],
    ),
    "smoke": Case("envctl.smoke/1", "tests/integration/images/test_build_engine.py", lambda t, mp: []),
    "base build": Case(
        "envctl.base/1",
        "tests/integration/images/test_build_engine.py",
        lambda t, mp: ["nope", "--images", str(t)],
    ),
    "inventory show": Case(
        "envctl.inventory/1",
        lambda t, mp: ["-i", str(_inventory(t)), "--limit", "gpu"],
        lambda t, mp: ["-i", str(_inventory(t)), "--limit", "nosuchgroup"],
    ),
    "inventory import": Case(
        "envctl.inventory-import/1",
        lambda t, mp: [
            str(FIXTURES / "push" / "ansible.ini"),
            "-o",
            str(t / "cluster.toml"),
            "--reader",
            "builtin",
        ],
        missing("no.ini"),
    ),
    "inventory check": Case(
        "envctl.inventory-check/1",
        "tests/integration/push/test_transport.py",
        lambda t, mp: ["-i", str(t / "no.toml")],
    ),
    "exec": Case("envctl.exec/1", NODES, lambda t, mp: ["-i", str(t / "no.toml"), "--", "true"]),
    "push": Case("envctl.push/1", NODES, lambda t, mp: [str(t), "-i", str(_inventory(t))]),
    "rollback": Case("envctl.rollback/1", NODES, lambda t, mp: ["Bad/Name", "-i", str(_inventory(t))]),
    "status": Case("envctl.status/1", NODES, lambda t, mp: ["-i", str(t / "no.toml")]),
    "gc": Case("envctl.gc/1", NODES, lambda t, mp: ["-i", str(t / "no.toml")]),
    "doctor": Case(
        "envctl.doctor/1",
        "tests/integration/nodes/test_doctor.py",
        lambda t, mp: ["--local", "--limit", "gpu"],
    ),
    "bootstrap script": Case(
        "envctl.bootstrap-script/1",
        lambda t, mp: ["-o", str(t / "bootstrap.sh")],
        lambda t, mp: ["--user", "Bad User", "-o", str(t / "b.sh")],
    ),
    "history": Case("envctl.history/1", lambda t, mp: ["--kind", "push"], lambda t, mp: ["--limit", "0"]),
    "sandbox up": Case(
        "envctl.sandbox-up/1",
        "tests/integration/push/test_sandbox.py",
        lambda t, mp: ["--nodes", "0", "--dir", str(t / "sb")],
    ),
    "sandbox down": Case(
        "envctl.sandbox-down/1", "tests/integration/push/test_sandbox.py", lambda t, mp: ["--no-such-flag"]
    ),
    "sandbox status": Case(
        "envctl.sandbox-status/1", "tests/integration/push/test_sandbox.py", lambda t, mp: ["--no-such-flag"]
    ),
    "demo": Case(
        "envctl.demo/1", "tests/integration/test_demo.py", lambda t, mp: ["--profile", str(t / "no")]
    ),
}


def listed_commands(capsys: pytest.CaptureFixture[str], words: tuple[str, ...] = ()) -> set[str]:
    """The leaf commands ``envctl [WORDS] --help`` lists, recursively."""
    capsys.readouterr()
    main([*words, "--help"])
    text = capsys.readouterr().out
    if "Commands:" not in text:
        return {" ".join(words)}
    names = [line.split()[0] for line in text.split("Commands:", 1)[1].splitlines() if line.startswith("  ")]
    return set().union(*(listed_commands(capsys, (*words, name)) for name in names))


def test_every_listed_command_has_its_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert listed_commands(capsys) == set(CASES)
    # bootstrap -i is the group itself (no leaf to list): tests/integration/bootstrap runs it;
    # bootstrap-node/1 is the summary line of the script, not a command's document.
    # solve -i, lock -i and push --fleet are modes that need nodes:
    # tests/integration/nodes/test_solve_from_nodes.py checks their envelopes
    unlisted = {ERROR, "envctl.build-docker/1", "envctl.bootstrap/1", "envctl.bootstrap-node/1"}
    unlisted |= {"envctl.fleet/1", "envctl.fleet-lock/1", "envctl.push-fleet/1"}
    assert {case.schema for case in CASES.values()} | unlisted == DOCUMENTED


@pytest.mark.parametrize("command", sorted(CASES))
def test_success_is_an_ok_envelope(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[command]
    if isinstance(case.success, str):
        # needs nodes, an engine or root: that integration test runs it and checks the envelope
        text = (ROOT / case.success).read_text()
        assert "assert_envelope" in text and f'"{command.split()[-1]}"' in text, case.success
        return
    code, doc = run(with_json(command, case.success(tmp_path, monkeypatch)), capsys)
    assert_envelope(doc, code, case.schema)
    assert (code, doc["ok"]) == (0, True), doc


@pytest.mark.parametrize("command", sorted(CASES))
def test_bad_input_is_an_error_envelope_and_exit_2(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = run(with_json(command, CASES[command].bad_input(tmp_path, monkeypatch)), capsys)
    assert_envelope(doc, code, ERROR)
    assert code == 2 and "\n" not in doc["error"], doc


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "nosuch"],
        ["nosuch", "--json"],
        ["solve", "--json"],  # missing argument
        ["matrix", "--json"],  # an option the group does not have
        ["solve", "p.toml", "--json", "--gpu"],  # option without its value
    ],
)
def test_usage_errors_are_error_envelopes_with_json(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = run(args, capsys)
    assert_envelope(doc, code, ERROR)
    assert code == 2 and doc["hint"].startswith("see 'envctl")


def test_a_result_that_is_not_ok_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(with_json("lock", _lock_args(tmp_path)), capsys)  # --check, and no lock yet
    assert_envelope(doc, code, "envctl.lock/1")
    assert (code, doc["ok"], doc["status"]) == (1, False, "stale")


def test_without_json_errors_are_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["matrix", "show", "mxnet", "--matrix", SMALL])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[0] == "error: matrix show: unknown subject 'mxnet'"


def test_json_after_double_dash_belongs_to_the_remote_command(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["exec", "-i", str(tmp_path / "no.toml"), "--", "tool", "--json"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "no such inventory" in err


def test_console_entry_point_gives_the_same_envelope(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "envctl", "solve", str(tmp_path / "no.toml"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(r.stdout)
    assert_envelope(doc, r.returncode, ERROR)
    assert r.returncode == 2 and doc["error_class"] == "InputError"


def test_unknown_exceptions_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import envctl.cli.solve

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(envctl.cli.solve, "_solve", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["solve", "p.toml", "--json"])


def test_debug_lets_envctl_errors_through(tmp_path: Path) -> None:
    with pytest.raises(EnvctlError):
        main(["--debug", "solve", str(tmp_path / "no.toml"), "--json"])
