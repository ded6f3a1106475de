"""The push progress reporter: per-node and overall bytes, safe without a terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from envctl.cli.progress import RichPushReporter, push_reporter
from envctl.core.delivery import Delivered, NotDelivered
from envctl.services.deliver.push import NullReporter


def test_rich_reporter_counts_bytes_per_node_and_overall() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = Progress(console=console)
    rep = RichPushReporter(progress)
    with progress:
        rep.phase("stage")
        rep.node_started("n1", 1000)
        rep.node_started("n2", 0)
        rep.node_bytes("n1", 600)
        rep.node_bytes("n1", 400)
        rep.node_finished("n1", Delivered("ok", "sha256:x"))
        rep.node_finished("n2", NotDelivered("n2: x"))
    tasks = {t.description.split()[0]: t for t in progress.tasks}
    assert tasks["n1"].completed == 1000 and tasks["n1"].finished
    total = progress.tasks[0]
    assert total.total == 1000 and total.completed == 1000
    assert "failed" in tasks["n2"].description


def test_push_json_gives_the_do_nothing_reporter() -> None:
    rep, _ = push_reporter(quiet=True)
    assert isinstance(rep, NullReporter)
