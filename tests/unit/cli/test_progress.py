"""The one reporter of long commands: what shows on a terminal, in a pipe, with -q, -v, --json."""

from __future__ import annotations

import io

import click
import pytest
from rich.console import Console
from rich.progress import Progress

from envctl.cli import QUIET, VERBOSE, cli
from envctl.cli.progress import LineReporter, Reporter, RichReporter, reporter
from envctl.core.delivery import Delivered


def _plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def _feed(rep: Reporter) -> None:
    rep.phase("fetch 2 files")
    rep.item_started("numpy 2.1.0", 2_000_000)
    rep.item_bytes("numpy 2.1.0", 1_500_000)
    rep.item_bytes("numpy 2.1.0", 500_000)
    rep.item_finished("numpy 2.1.0", "downloaded")
    rep.note("I: Retrieving libc6 2.36-9")
    rep.phase("layers")
    rep.item_started("layer package:six")
    rep.item_finished("layer package:six", "built [3 files]")
    rep.node_finished("n1", Delivered("ok", "sha256:x"))


def test_a_pipe_gets_one_line_per_phase() -> None:
    console, out = _plain_console()
    _feed(LineReporter(console, "build"))
    assert out.getvalue().splitlines() == ["envctl build: fetch 2 files", "envctl build: layers"]


def test_verbose_adds_items_notes_and_nodes() -> None:
    console, out = _plain_console()
    _feed(LineReporter(console, "build", verbose=True))
    assert out.getvalue().splitlines() == [
        "envctl build: fetch 2 files",
        "  numpy 2.1.0: downloaded (1.9 MiB)",
        "  I: Retrieving libc6 2.36-9",
        "envctl build: layers",
        "  layer package:six: built [3 files]",  # no emoji, no markup
        "  n1: staged",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()  # no animation


def test_terminal_bars_count_every_item_and_drop_finished_ones() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = Progress(console=console)
    rep = RichReporter(progress, label="build")
    with progress:
        rep.phase("fetch")
        rep.item_started("a 1", 1000)
        rep.item_started("b 2", 0)  # size unknown
        rep.item_bytes("a 1", 1000)
        rep.item_bytes("b 2", 300)
        assert len(progress.tasks) == 3
        rep.item_finished("a 1")
        rep.item_finished("b 2")
        rep.note("I: Unpacking libc6...")
    (total,) = progress.tasks
    assert total.completed == 1300 and total.total == 1000
    assert "build (fetch)" in total.description and "Unpacking" in total.description


@pytest.mark.parametrize(
    ("meta", "as_json", "kind"),
    [
        ({}, False, LineReporter),  # the test's stderr is no terminal
        ({QUIET: True}, False, Reporter),
        ({}, True, Reporter),  # --json: nothing unless asked
        ({VERBOSE: 1}, True, LineReporter),
        ({QUIET: True, VERBOSE: 1}, True, Reporter),
    ],
)
def test_the_options_choose_the_reporter(meta: dict[str, object], as_json: bool, kind: type) -> None:
    with click.Context(cli) as ctx:
        ctx.meta.update(meta)
        rep, _ = reporter("lock", as_json)
    assert type(rep) is kind


def test_bars_show_names_as_they_are() -> None:
    from envctl.cli.progress import _description_column

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, emoji=False)
    progress = Progress(_description_column(), console=console, auto_refresh=False)
    rep = RichReporter(progress, label="build")
    with progress:
        rep.phase("layers [pip]")
        rep.item_started("layer package:six:", 10)
        progress.refresh()
    text = out.getvalue()
    assert "layer package:six:" in text and "build (layers [pip])" in text
    assert "6\ufe0f\u20e3" not in text  # rich's :six: emoji
