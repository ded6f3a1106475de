"""The parts `envctl build` works through, as Protocols: where its bytes come from and go.

The build service plans layers, checks the base's Python, writes the metadata layer and the image
documents itself; it reaches the outside only through these: a downloader (behind the blob
cache), a base resolver, one installer per package manager and an image loader. The real ones
live in ``adapters`` (and ``services/build/base_source``); tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from envctl.core.image import BaseImage
from envctl.core.lock import LockEntry


class Downloader(Protocol):
    """Opens the bytes behind a URL of a lock (file://, http(s)://) for reading."""

    def open(self, url: str, what: str, offset: int = 0) -> AbstractContextManager[IO[bytes]]:
        """A readable stream of ``url`` from byte ``offset`` on; ``what`` names the package in
        errors.

        BuildError when the URL does not exist, BuildFailure when it cannot be reached.
        """
        ...


class BaseResolver(Protocol):
    """Loads a ``--base`` reference into the blob cache."""

    def resolve(self, ref: str, architecture: str) -> BaseImage:
        """The base image named by ``ref`` for ``architecture``, its blobs in the cache."""
        ...


class PackageInstaller(Protocol):
    """Installs one verified package file into a staging tree (a layer's contents)."""

    def install(self, source: Path, package: LockEntry, staging: Path, prefix: str, python: str) -> None:
        """Unpack ``source`` (the file of ``package``) under ``staging`` as if at ``prefix``."""
        ...


class ImageLoader(Protocol):
    """Loads a docker-archive into a container engine."""

    def load(self, archive: Path) -> list[str]:
        """The tags the engine now has from ``archive``."""
        ...


@dataclass(frozen=True)
class BuildParts:
    """Everything outside the build service that a build uses, besides the blob cache."""

    bases: BaseResolver
    installers: Mapping[str, PackageInstaller]  # by LockEntry.manager: "pip", "conda"
    loader: ImageLoader
