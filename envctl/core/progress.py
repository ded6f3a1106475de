"""How long work reports its progress: services call a ``Progress``, the CLI decides what shows.

Services never print. ``lock``, ``build`` and ``base build`` take a Progress (push takes the
node-shaped ``PushReporter``; the CLI's reporter object is both); tests and ``--json`` use
NullProgress. Every method may be called from worker threads.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Progress sink of one command."""

    def phase(self, name: str) -> None:
        """A new step of the work ("resolve", "fetch 41 files", "debootstrap: unpacking")."""
        ...

    def item_started(self, item: str, total_bytes: int = 0) -> None:
        """One unit of work began (a file, a layer, a platform); 0 bytes: size unknown."""
        ...

    def item_bytes(self, item: str, nbytes: int) -> None:
        """``nbytes`` more of the item are done."""
        ...

    def item_finished(self, item: str, status: str = "ok") -> None:
        """The item is done; ``status`` says how ("cached", "12 files", "failed")."""
        ...

    def note(self, message: str) -> None:
        """A line of detail (a tool's own output), shown when the user asks for more (-v)."""
        ...


class NullProgress:
    """Reports nothing: for --json, -q, tests."""

    def phase(self, name: str) -> None:
        """Ignored."""

    def item_started(self, item: str, total_bytes: int = 0) -> None:
        """Ignored."""

    def item_bytes(self, item: str, nbytes: int) -> None:
        """Ignored."""

    def item_finished(self, item: str, status: str = "ok") -> None:
        """Ignored."""

    def note(self, message: str) -> None:
        """Ignored."""
