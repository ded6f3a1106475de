"""The hostile corpus (tests/fixtures/hostile/): every file ends in one line of error and one of
hint, exit 2, quickly, with no traceback and nothing written (findings 6, 10, 11, 13, 14)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters.files import tomllib

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
CASES: list[dict[str, Any]] = tomllib.loads((HOSTILE / "cases.toml").read_text())["case"]
#: seconds one case may take (each took 60 s, ran out of memory or never ended before)
LIMIT_S = 10.0

COMMANDS = {
    "export": ["export", "{file}", "--format", "requirements"],
    "render": ["render", "{file}", "--dockerfile", "{out}"],
    "solve": ["solve", "{file}"],
    "inventory-show": ["inventory", "show", "-i", "{file}"],
    "import": ["inventory", "import", "{file}"],
}


def _run(args: list[str]) -> tuple[int, str, str]:
    from envctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_every_file_of_the_corpus_has_a_case() -> None:
    files = {str(p.relative_to(HOSTILE)) for p in HOSTILE.glob("*/*") if p.is_file()}
    assert files == {case["file"] for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_a_hostile_file_is_refused_in_one_line(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ENVCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = [a.format(file=HOSTILE / case["file"], out=out) for a in COMMANDS[case["command"]]]
    start = time.monotonic()
    code, stdout, stderr = _run(args)
    seconds = time.monotonic() - start
    lines = stderr.strip().splitlines()
    assert code == 2, stderr or stdout
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), stderr
    assert case["fragment"] in lines[0], lines[0]
    assert len(lines[0]) < 1000, "an echoed value was not cut"
    assert seconds < LIMIT_S, f"took {seconds:.1f}s"
    assert not out.exists() and stdout == ""
    assert sorted(os.listdir(tmp_path)) in ([], ["state"], ["cache", "state"], ["cache"]), os.listdir(
        tmp_path
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
