"""-q / -v / --debug on every command, tables that keep their width when piped, shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from envctl.cli import cli

ROOT = Path(__file__).resolve().parents[3]
COMMON = {"-q", "--quiet", "-v", "--verbose", "--debug"}


def envctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def _commands(group: click.Group, path: str = "envctl") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} {name}")


def test_every_command_takes_the_common_options() -> None:
    found = dict(_commands(cli))
    assert len(found) > 25 and "envctl matrix refresh" in found and "envctl base build" in found
    for path, command in found.items():
        opts = {o for p in command.params for o in getattr(p, "opts", ())}
        assert opts >= COMMON, f"{path} lacks {sorted(COMMON - opts)}"
    top = {o for p in cli.params for o in getattr(p, "opts", ())}
    assert top >= COMMON


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "no.toml")
    plain = envctl("solve", missing)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    for args in (("solve", missing, "--debug"), ("--debug", "solve", missing)):
        r = envctl(*args)
        assert r.returncode == 1 and "Traceback" in r.stderr and "InputError" in r.stderr, args


def test_quiet_and_verbose_are_accepted_anywhere(tmp_path: Path) -> None:
    r = envctl("-q", "matrix", "show", "gpus", "-v", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["schema"] == "envctl.matrix-show/1"
    r = envctl("matrix", "show", "gpus", "--loud")
    assert r.returncode == 2 and "No such option" in r.stderr


def test_a_piped_table_keeps_one_line_per_row() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    rows = json.loads(envctl("matrix", "show", "torch", "--json", env=env).stdout)["rows"]
    r = envctl("matrix", "show", "torch", env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # title, top rule, header, header rule, one line per row, bottom rule
    assert len(lines) == len(rows) + 5, len(lines)
    assert all(row["source"] in r.stdout for row in rows)
    # $COLUMNS still decides when it is set
    narrow = envctl("matrix", "show", "torch", env=dict(env, COLUMNS="80"))
    assert len(narrow.stdout.splitlines()) > 2 * len(rows)


def test_shell_completion_is_click_s(tmp_path: Path) -> None:
    env = dict(os.environ, _ENVCTL_COMPLETE="bash_source")
    script = envctl(env=env)
    assert script.returncode == 0 and "_envctl_completion" in script.stdout
    env = dict(os.environ, _ENVCTL_COMPLETE="bash_complete", COMP_WORDS="envctl lock --ch", COMP_CWORD="2")
    words = envctl(env=env).stdout.split()
    assert "plain,--check" in words and "plain,--channel" in words
    env.update(COMP_WORDS="envctl base build -", COMP_CWORD="3")
    assert "plain,--verbose" in envctl(env=env).stdout.split()


def test_tables_print_emoji_codes_as_they_are() -> None:
    from rich.table import Table

    from envctl.cli.output import console

    table = Table()
    table.add_column("package")
    table.add_row("pkg:six: :thumbs_up:")
    with console().capture() as captured:
        console().print(table)
        console().print("plain :six:")
    assert "pkg:six: :thumbs_up:" in captured.get() and "plain :six:" in captured.get()
