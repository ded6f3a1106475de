"""Per-node outcomes of a multi-node operation (fabric's GroupResult idea).

Pure. A ``GroupResult`` maps every node to its value or to the EnvctlError that stopped it, in
the order the nodes were given; ``outcome`` says whether all, some or none succeeded, which is
what a command's exit status reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from envctl.errors import EnvctlError

T = TypeVar("T")


class GroupResult(Mapping[str, "T | EnvctlError"], Generic[T]):
    """node -> result or error, with ``succeeded`` / ``failed`` views."""

    def __init__(self, items: Mapping[str, T | EnvctlError]) -> None:
        self._items = dict(items)

    def __getitem__(self, node: str) -> T | EnvctlError:
        return self._items[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def succeeded(self) -> dict[str, T]:
        """Nodes whose operation returned a value."""
        return {n: v for n, v in self._items.items() if not isinstance(v, EnvctlError)}

    @property
    def failed(self) -> dict[str, EnvctlError]:
        """Nodes whose operation raised an envctl error."""
        return {n: v for n, v in self._items.items() if isinstance(v, EnvctlError)}

    @property
    def outcome(self) -> str:
        """``all``, ``partial`` or ``none`` (an empty group counts as ``all``)."""
        if not self.failed:
            return "all"
        return "none" if not self.succeeded else "partial"
