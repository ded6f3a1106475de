"""Findings 1 and 14 through the command line: ``build -o``, ``--docker-archive``, ``render
--dockerfile``, ``export -o`` and ``inventory import -o`` never replace what envctl did not make;
names that become paths or tags (``--name``, ``--tag``, a lock's profile) are checked before any
work; numbers that are nan or inf and inputs that are FIFOs end in one line.

Every output path is a decoy inside the test's temporary directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "nodes"))

import bd_cli
import bd_wheels
import nd_oci

PYTHON_LAYER = [
    ("dir", "usr"),
    ("dir", "usr/bin"),
    ("file", "usr/bin/python3.11", b"#!ELF\n", 0o755),
    ("dir", "usr/lib"),
    ("dir", "usr/lib/python3.11"),
    ("file", "usr/lib/python3.11/os.py", b""),
]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock of four small wheels and a base layout with Python 3.11, in the cwd."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
    bd_wheels.write_lock(work / "lock.yml", bd_wheels.standard_wheels(tmp_path / "w", lib_mb=1))
    nd_oci.write_layout(work / "base", [PYTHON_LAYER])
    return work


def _run(work: Path, *args: str) -> tuple[int, str]:
    code, _out, err = bd_cli.run_cli(list(args), work.parent / "cache")
    return code, err


def _build(work: Path, *args: str) -> tuple[int, str]:
    return _run(work, "build", "lock.yml", "--base", "oci:base", *args)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    # a pipe gets one plain line per phase of the work before the error (`envctl build: ...`)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("envctl "))
    assert "Traceback" not in err and err.startswith("error: "), err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: "), err
    for word in words:
        assert word in lines[0], err


def test_build_o_a_file_is_refused_and_the_file_kept(work: Path) -> None:
    (work / "victim.txt").write_text("precious")
    _refused(*_build(work, "-o", "victim.txt"), "not a directory")
    assert (work / "victim.txt").read_text() == "precious"


def test_build_o_a_project_directory_is_refused_unless_forced(work: Path) -> None:
    (work / "proj").mkdir()
    (work / "proj" / "main.py").write_text("precious")
    _refused(*_build(work, "-o", "proj"), "main.py", "not made by envctl")
    assert sorted(os.listdir(work / "proj")) == ["main.py"]
    code, err = _build(work, "-o", "proj", "--force")
    assert code == 0, err
    assert (work / "proj" / "main.py").read_text() == "precious"
    assert {"oci-layout", "index.json", "blobs"} <= set(os.listdir(work / "proj"))


def test_build_o_dot_is_refused_cleanly(work: Path) -> None:
    before = _snapshot(work)
    _refused(*_build(work, "-o", "."), "not made by envctl")
    assert _snapshot(work) == before
    assert not [p for p in os.listdir(work) if p.startswith(".")]  # no "..old.*" left behind


@pytest.mark.parametrize("where", ["/proc/envctl-decoy", "/sys/envctl-decoy"])
def test_build_o_under_proc_or_sys_is_refused(work: Path, where: str) -> None:
    _refused(*_build(work, "-o", where), "pseudo-filesystem")


def test_rebuild_replaces_its_own_layout_and_may_use_it_as_base(work: Path) -> None:
    assert _build(work, "-o", "out")[0] == 0
    assert _build(work, "-o", "out")[0] == 0
    # the lock's own previous output as the base of the next build into the same directory
    code, err = _run(work, "build", "lock.yml", "--base", "oci:out", "-o", "out")
    assert code == 0, err
    assert (work / "out" / "index.json").is_file()


def test_docker_archive_replaces_only_its_own(work: Path) -> None:
    (work / "victim.tar").write_text("precious")
    _refused(*_build(work, "--docker-archive", "victim.tar"), "--docker-archive", "refusing")
    assert (work / "victim.tar").read_text() == "precious"
    for _ in range(2):
        code, err = _build(work, "--docker-archive", "img.tar")
        assert code == 0, err


def test_render_dockerfile_over_a_file_or_project_is_refused(work: Path) -> None:
    (work / "victim").write_text("precious")
    _refused(*_run(work, "render", "lock.yml", "--dockerfile", "victim"), "not a directory")
    (work / "proj").mkdir()
    (work / "proj" / "main.py").write_text("precious")
    _refused(*_run(work, "render", "lock.yml", "--dockerfile", "proj"), "main.py")
    for _ in range(2):
        code, err = _run(work, "render", "lock.yml", "--dockerfile", "ctx")
        assert code == 0, err
    assert (work / "victim").read_text() == "precious"
    assert os.listdir(work / "proj") == ["main.py"]


@pytest.mark.parametrize("where", ["/proc/envctl-test.yml", "/sys/envctl-test.yml", "/dev/null"])
def test_lock_o_where_envctl_may_not_write_is_refused_before_solving(work: Path, where: str) -> None:
    (work / "p.toml").write_text('[environment]\nname = "p"\n[frameworks]\ntorch = "*"\n')
    # before: solved, asked the indexes, and only then failed to write
    _refused(*_run(work, "lock", "p.toml", "-o", where), f"--output {where}")


def test_export_o_keeps_a_file_it_did_not_write(work: Path) -> None:
    (work / "notes.txt").write_text("precious")
    _refused(*_run(work, "export", "lock.yml", "--format", "requirements", "-o", "notes.txt"), "refusing")
    assert (work / "notes.txt").read_text() == "precious"
    os.mkfifo(work / "fifo")
    _refused(*_run(work, "export", "lock.yml", "--format", "requirements", "-o", "fifo"), "regular file")
    for fmt in ("requirements", "pylock", "explicit"):  # one export replaces another
        code, err = _run(work, "export", "lock.yml", "--format", fmt, "-o", "req.txt")
        assert code == 0, err
    assert os.stat(work / "req.txt").st_mode & 0o777 == 0o666 & ~_umask()


def test_inventory_import_o_keeps_a_file_it_did_not_write(work: Path) -> None:
    (work / "hosts.ini").write_text("[gpu]\nn1 ansible_host=10.0.0.1\n")
    (work / "inv.toml").write_text("precious")
    _refused(*_run(work, "inventory", "import", "hosts.ini", "-o", "inv.toml"), "refusing")
    assert (work / "inv.toml").read_text() == "precious"
    for _ in range(2):
        code, err = _run(work, "inventory", "import", "hosts.ini", "-o", "new.toml")
        assert code == 0, err


@pytest.mark.parametrize("name", ["../../etc", "nl\n", "Demo", "a/b"])
def test_build_name_that_is_a_path_is_refused_before_any_work(work: Path, name: str) -> None:
    _refused(*_build(work, "-o", "out", "--name", name), "--name: environment name")
    assert not (work / "out").exists() and not (work.parent / "cache" / "layers").exists()


def test_a_lock_whose_profile_name_is_a_path_is_refused(work: Path) -> None:
    text = (work / "lock.yml").read_text().replace('"profile":"bdtest"', '"profile":"../../etc"')
    assert "../../etc" in text
    (work / "lock.yml").write_text(text)
    _refused(*_build(work, "-o", "out"), "the lock's profile name", "'../../etc'")
    code, err = _build(work, "-o", "out", "--name", "fixed")  # --name decides instead
    assert code == 0, err


@pytest.mark.parametrize("tag", ["Bad Tag;x", "x:y:z", "UPPER/x", "a\n"])
def test_build_tag_outside_dockers_grammar_is_refused(work: Path, tag: str) -> None:
    _refused(*_build(work, "-o", "out", "--tag", tag), "--tag: image name")
    assert not (work / "out").exists()


def test_build_tag_with_a_registry_port_names_the_layout_by_its_tag(work: Path) -> None:
    import json

    code, err = _build(work, "-o", "out", "--tag", "localhost:5000/team/x:v1")
    assert code == 0, err
    (entry,) = json.loads((work / "out" / "index.json").read_text())["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1"


@pytest.mark.parametrize(
    "args",
    [
        ["gc", "-i", "inv.toml", "--max-age", "nan"],
        ["gc", "-i", "inv.toml", "--max-age", "inf"],
        ["push", "base", "-i", "inv.toml", "--lock-wait", "nan"],
        ["exec", "-i", "inv.toml", "--timeout", "nan", "--", "true"],
    ],
)
def test_nan_and_inf_are_not_numbers_of_hours_or_seconds(work: Path, args: list[str]) -> None:
    (work / "inv.toml").write_text('[nodes.n1]\nhost = "127.0.0.1"\n')
    code, err = _run(work, *args)
    assert code == 2 and "is not a number" in err, err


@pytest.mark.parametrize("command", [["solve"], ["lock"], ["export", "--format", "requirements"]])
def test_a_fifo_as_input_is_refused_without_blocking(work: Path, command: list[str]) -> None:
    import time

    os.mkfifo(work / "fifo")
    start = time.monotonic()
    args = [command[0], "fifo", *command[1:]]
    code, err = _run(work, *args)
    assert time.monotonic() - start < 10
    assert code == 2 and "not a regular file" in err, err


@pytest.mark.parametrize("command", [["solve"], ["lock"], ["export", "--format", "requirements"]])
def test_a_directory_as_input_is_refused_in_one_line(work: Path, command: list[str]) -> None:
    (work / "folder").mkdir()
    code, err = _run(work, command[0], "folder", *command[1:])
    # solve's was an IsADirectoryError traceback; the others are refused by click's path check
    assert (
        code == 2 and "Traceback" not in err and ("not a regular file" in err or "is a directory" in err)
    ), err


def test_history_limit_past_sqlites_integers_is_a_usage_error(work: Path) -> None:
    code, _out, err = bd_cli.run_cli(["history", "--limit", "9" * 23], work.parent / "cache")
    assert code == 2 and "Traceback" not in err and "--limit" in err, err  # was OverflowError


def test_history_shows_a_damaged_ledger_row(work: Path) -> None:
    import sqlite3

    from envctl.adapters import ledger

    ledger.record("push", "x", ["n1"], "ok", {"env": "demo"})
    with sqlite3.connect(ledger.ledger_path()) as conn:
        conn.execute("INSERT INTO events (at, who, kind, subject, targets, outcome, details) "
                     "VALUES (1e300, 'w', 'push', 's', '[1', 'ok', '{not json')")  # fmt: skip
    code, _out, err = bd_cli.run_cli(["history"], work.parent / "cache")
    assert code == 0 and "Traceback" not in err, err
    assert ledger.desired() == {}  # the damaged row names no node; the good one was no switch
    assert len(ledger.events()) == 2 and ledger.events()[0].details["damaged"].startswith("details")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
