"""``envctl doctor`` on bad command lines: one error line naming what is wrong, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envctl.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--json", *args])
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give -i/--inventory or --local"),
        (["--local", "-i", "inv.toml"], "give -i/--inventory or --local"),
        (["--local", "--limit", "gpu"], "--limit selects inventory nodes"),
    ],
)
def test_usage_errors(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(args, capsys)
    assert code == 2 and says in doc["error"] and "\n" not in doc["error"]


def test_a_missing_lock_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
    code, doc = run(["--local", "--lock", str(tmp_path / "nope.yml")], capsys)
    assert code == 2 and str(tmp_path / "nope.yml") in doc["error"]


def test_a_missing_inventory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(["-i", str(tmp_path / "inv.toml")], capsys)
    assert code == 2 and "inv.toml" in doc["error"]
