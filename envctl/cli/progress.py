"""Progress on stderr, through one reporter object for every long command (push, lock, build, base).

On a terminal: rich bars (bytes and rate per item and overall). Elsewhere (a pipe, a CI log): no
animation, one plain line per phase, and with ``-v`` one per finished item and tool output line.
Nothing with ``-q``, nor with ``--json`` unless ``-v`` asks for it; never anything on stdout.
The reporter takes the services' ``core.progress.Progress`` calls and push's ``PushReporter`` ones.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from envctl.core.delivery import Delivered, NotDelivered
from envctl.core.progress import NullProgress
from envctl.services.deliver.push import NullReporter


class Reporter(NullProgress, NullReporter):
    """Reports nothing (-q, --json): both protocols' methods, ignored."""


class RichReporter(Reporter):
    """Bars for a terminal: one per item plus the overall one; safe from worker threads."""

    def __init__(self, progress: Any, verbose: bool = False, label: str = "all nodes") -> None:
        self._progress = progress
        self._verbose = verbose
        self._label = label
        self._tasks: dict[str, Any] = {}
        self._phase = ""
        self._total = progress.add_task(f"[bold]{label}", total=0)
        self._lock = threading.Lock()

    def phase(self, name: str) -> None:
        """Show the phase in the overall bar."""
        self._phase = name
        self._progress.update(self._total, description=f"[bold]{_plain(self._label)} ({_plain(name)})")

    def item_started(self, item: str, total_bytes: int = 0) -> None:
        """Add a bar for the item and grow the total."""
        with self._lock:
            self._tasks[item] = self._progress.add_task(_plain(item), total=total_bytes or None)
            task = self._progress.tasks[self._total]
            self._progress.update(self._total, total=(task.total or 0) + total_bytes)

    def item_bytes(self, item: str, nbytes: int) -> None:
        """Advance the item's and the overall bar."""
        task = self._tasks.get(item)
        if task is not None:
            self._progress.advance(task, nbytes)
        self._progress.advance(self._total, nbytes)

    def item_finished(self, item: str, status: str = "ok") -> None:
        """Drop the item's bar (a line above the bars says so with -v)."""
        with self._lock:
            task = self._tasks.pop(item, None)
        if task is not None:
            self._progress.remove_task(task)
        if self._verbose:
            self._progress.console.print(f"  {item}: {status}", markup=False, highlight=False, emoji=False)

    def note(self, message: str) -> None:
        """With -v a line above the bars; else the overall bar's description, for a moment."""
        if self._verbose:
            self._progress.console.print(f"  {message}", markup=False, highlight=False, emoji=False)
        else:
            text = f"[bold]{_plain(self._label)} ({_plain(self._phase)})[/] {_plain(message[:60])}"
            self._progress.update(self._total, description=text)

    # push's PushReporter: node bars stay, marked staged or failed
    def node_started(self, node: str, total_bytes: int) -> None:
        """Add a bar for the node and grow the total."""
        with self._lock:
            self._tasks[node] = self._progress.add_task(_plain(node), total=total_bytes or 1)
            if not total_bytes:
                self._progress.update(self._tasks[node], completed=1)
            task = self._progress.tasks[self._total]
            self._progress.update(self._total, total=(task.total or 0) + total_bytes)

    def node_bytes(self, node: str, nbytes: int) -> None:
        """Advance the node's and the overall bar."""
        self.item_bytes(node, nbytes)

    def node_finished(self, node: str, result: Delivered | NotDelivered) -> None:
        """Mark the node staged or failed."""
        if node in self._tasks:
            mark = "[green]staged" if result.status == "ok" else f"[red]{result.status}"
            self._progress.update(self._tasks[node], description=f"{_plain(node)} {mark}")


#: the name the push tests and older callers know it by
RichPushReporter = RichReporter


class LineReporter(Reporter):
    """Plain lines for a pipe or a CI log: phases always, items and tool output with -v."""

    def __init__(self, console: Any, command: str, verbose: bool = False) -> None:
        self._console = console
        self._prefix = f"envctl {command}: " if command else "envctl: "
        self._verbose = verbose
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self._console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def phase(self, name: str) -> None:
        """One line per phase."""
        self._line(self._prefix + name)

    def item_started(self, item: str, total_bytes: int = 0) -> None:
        """Remember the size for the item's line."""
        with self._lock:
            self._sizes[item] = total_bytes

    def item_finished(self, item: str, status: str = "ok") -> None:
        """With -v: the item, how it ended and its size."""
        with self._lock:
            size = self._sizes.pop(item, 0)
        if self._verbose:
            self._line(f"  {item}: {status}" + (f" ({_size(size)})" if size else ""))

    def note(self, message: str) -> None:
        """With -v: the line."""
        if self._verbose:
            self._line(f"  {message}")

    def node_finished(self, node: str, result: Delivered | NotDelivered) -> None:
        """With -v: the node and how its staging ended."""
        if self._verbose:
            self._line(f"  {node}: {'staged' if result.status == 'ok' else result.status}")


def _description_column() -> Any:
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Description(ProgressColumn):
        """The task's description: our markup (bold, colours) read, emoji codes never."""

        def render(self, task: Task) -> Text:
            return Text.from_markup(task.description, emoji=False)

    return Description()


def _plain(text: str) -> str:
    """``text`` shown as it is inside a bar's description (its markup escaped)."""
    from rich.markup import escape

    return escape(text)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def reporter(command: str, as_json: bool = False) -> tuple[Reporter, Any]:
    """The command's reporter and the context that shows it (enter it around the work).

    Quiet with -q, or with --json unless -v; bars on a terminal; plain lines otherwise.
    """
    from envctl.cli import verbosity
    from envctl.cli.output import stderr

    level = verbosity()
    if level < 0 or (as_json and level < 1):
        return Reporter(), contextlib.nullcontext()
    if not stderr.is_terminal:
        return LineReporter(stderr, command, verbose=level > 0), contextlib.nullcontext()
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        _description_column(),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )
    label = "all nodes" if command == "push" else command
    return RichReporter(progress, verbose=level > 0, label=label), progress


def push_reporter(quiet: bool) -> tuple[Reporter, Any]:
    """Push's reporter: ``quiet`` is its --json."""
    return reporter("push", as_json=quiet)
