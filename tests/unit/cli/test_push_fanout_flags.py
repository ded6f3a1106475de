"""``envctl push``'s relay tuning flags: bad values end in one line and exit 2, before any node
or file is touched (the image and inventory named here do not exist)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--relay-fanout", "0"], "--relay-fanout 0: expected 1 to 16"),
        (["--relay-seeds", "65"], "--relay-seeds 65: expected 1 to 64"),
        (["--fanout", "direct", "--relay-fanout", "3"], "--relay-fanout is for --fanout relay"),
        (["--relay-fanout", "two"], "'two' is not a valid integer"),
    ],
)
def test_bad_relay_tuning_exits_2_with_one_line(tmp_path: Path, flags: list[str], words: str) -> None:
    argv = ["push", str(tmp_path / "img"), "-i", str(tmp_path / "inv.toml"), *flags]
    result = CliRunner().invoke(cli, [*argv, "--json"])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and words in doc["error"] and "\n" not in doc["error"]
    text = CliRunner().invoke(cli, argv)
    assert text.exit_code == 2 and words in text.output


def test_the_fleet_path_checks_the_flags_too(tmp_path: Path) -> None:
    argv = ["push", "--fleet", str(tmp_path / "f.toml"), "-i", str(tmp_path / "inv.toml")]
    result = CliRunner().invoke(cli, [*argv, "--env", "e", "--relay-seeds", "0", "--json"])
    assert result.exit_code == 2 and "--relay-seeds 0" in json.loads(result.stdout)["error"]


def test_the_flags_are_in_the_help() -> None:
    out = CliRunner().invoke(cli, ["push", "--help"]).output
    assert "--relay-fanout" in out and "--relay-seeds" in out


def test_the_table_marks_holders_and_shows_the_tuning() -> None:
    from envctl.cli.nodes_common import _show_relay
    from envctl.cli.output import stdout

    fanout = {
        "tree": {"n1": None, "n2": "n1", "n3": None},
        "holders": ["n1"],
        "reparented": {},
        "bytes_from_sender": 10,
        "bytes_relayed": 20,
        "encrypted": True,
        "relay_fanout": 3,
        "relay_seeds": 1,
    }
    with stdout.capture() as out:
        _show_relay(fanout)
    text = out.get()
    assert "n1<-held" in text and "n2<-n1" in text and "n3<-here" in text
    assert "fan-out 3, seeds 1" in text
