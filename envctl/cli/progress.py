"""Rich progress for pushes: bytes and rate per node and overall (nothing when not a TTY)."""

from __future__ import annotations

import threading
from typing import Any

from envctl.core.delivery import Delivered, NotDelivered
from envctl.services.deliver.push import NullReporter, PushReporter


class RichPushReporter:
    """One bar per node plus a total; safe to call from the push worker threads."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}
        self._total = progress.add_task("all nodes", total=0, style="bold")
        self._lock = threading.Lock()

    def phase(self, name: str) -> None:
        """Show the phase in the overall bar."""
        self._progress.update(self._total, description=f"all nodes ({name})")

    def node_started(self, node: str, total_bytes: int) -> None:
        """Add a bar for the node and grow the total."""
        with self._lock:
            self._tasks[node] = self._progress.add_task(node, total=total_bytes or 1)
            if not total_bytes:
                self._progress.update(self._tasks[node], completed=1)
            task = self._progress.tasks[self._total]
            self._progress.update(self._total, total=(task.total or 0) + total_bytes)

    def node_bytes(self, node: str, nbytes: int) -> None:
        """Advance the node's and the overall bar."""
        self._progress.advance(self._tasks[node], nbytes)
        self._progress.advance(self._total, nbytes)

    def node_finished(self, node: str, result: Delivered | NotDelivered) -> None:
        """Mark the node staged or failed."""
        if node in self._tasks:
            mark, color = ("staged", "green") if result.status == "ok" else (result.status, "red")
            self._progress.update(self._tasks[node], description=node, mark=mark, mark_style=color)


def push_reporter(quiet: bool) -> tuple[PushReporter, Any]:
    """A reporter and the context that shows it; a do-nothing pair when quiet or not a TTY."""
    import contextlib

    from envctl.cli.output import stderr

    if quiet or not stderr.is_terminal:
        return NullReporter(), contextlib.nullcontext()
    progress = make_progress(stderr)
    return RichPushReporter(progress), progress


def make_progress(console: Any) -> Any:
    """A rich Progress with byte counts whose task names are literal text (no markup)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        Task,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from envctl.cli.output import styled

    class Label(ProgressColumn):
        """The task's name and mark as literal text (rich's TextColumn would parse markup)."""

        def render(self, task: Task) -> Any:
            mark = task.fields.get("mark")
            parts: list[str | tuple[str, str]] = [(task.description, task.fields.get("style", ""))]
            if mark:
                parts += [" ", (str(mark), str(task.fields.get("mark_style", "")))]
            return styled(*parts)

    return Progress(
        Label(),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
