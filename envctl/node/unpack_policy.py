"""What a layer may hold, decided before anything touches the disk.

Standard library only (it travels to nodes in the agent bundle). This module owns the limits of
one image (``Limits``, the agent's ``--max-*``), the error every refusal raises (``UnpackError``
and its ``kind``), and the pure checks of an entry: its name (NUL bytes, absolute, ``..``, too
long, too deep) and a symlink's target read from the link's own directory. Whiteout names are
defined here; applying them is ``unpack_tree``'s.
"""

from __future__ import annotations

import errno
import os
import tarfile
from dataclasses import dataclass
from typing import Any

from envctl.node.checks import show

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk, ...): skipped, as runtimes do
NAME_MAX = 255  # bytes of one path component (Linux)
PATH_MAX = 4096  # bytes of a path or a link target with its NUL (Linux)
MAX_HOPS = 40  # symlinks followed while resolving one name (Linux's MAXSYMLINKS)


@dataclass(frozen=True)
class Limits:
    """How much one image may unpack to. The defaults hold real CUDA images (tens of GB, a few
    hundred thousand files) with room to spare; the inventory's ``unpack_max_*`` keys move them."""

    max_entries: int = 1_000_000  # tar entries over all layers
    max_bytes: int = 64 << 30  # regular-file bytes over all layers, sparse files at apparent size
    max_depth: int = 256  # directory levels of one path


def limits_of(args: Any) -> Limits:
    """The limits the agent's command line asks for (``--max-*``), the defaults elsewhere."""
    default = Limits()
    return Limits(
        getattr(args, "max_entries", None) or default.max_entries,
        getattr(args, "max_bytes", None) or default.max_bytes,
        getattr(args, "max_depth", None) or default.max_depth,
    )


class UnpackError(Exception):
    """A layer holds an entry that must not (or cannot) be unpacked; ``kind`` says which."""

    def __init__(self, message: str, kind: str = "hostile") -> None:
        super().__init__(message)
        self.kind = kind


def os_error(exc: OSError, where: str, what: str) -> UnpackError:
    """The UnpackError an OSError met while unpacking ``what`` under ``where`` becomes."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UnpackError(f"{where}: No space left on device while unpacking {what}", "nospace")
    return UnpackError(f"{where}: {exc.strerror} while unpacking {what}", "os")


def entry_parts(name: str, layer: str, limits: Limits, hardlink: str | None = None) -> list[str]:
    """The entry's path components, or UnpackError if it could leave the tree or is too big."""
    what = show(name) if hardlink is None else f"hardlink {show(hardlink)} -> {show(name)}"
    if "\0" in name:
        raise UnpackError(f"layer {layer}: refusing name with a NUL byte: {what}")
    if name.startswith("/"):
        raise UnpackError(f"layer {layer}: refusing absolute path {what}")
    if len(os.fsencode(name)) >= PATH_MAX:
        raise UnpackError(f"layer {layer}: refusing {what}: longer than {PATH_MAX - 1} bytes")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"layer {layer}: refusing path with '..': {what}")
    if len(parts) > limits.max_depth:
        raise UnpackError(
            f"layer {layer}: refusing {what}: deeper than {limits.max_depth} directories"
            " (limit: inventory key unpack_max_depth)"
        )
    if any(len(os.fsencode(p)) > NAME_MAX for p in parts):
        raise UnpackError(f"layer {layer}: refusing {what}: a name longer than {NAME_MAX} bytes")
    return parts


def check_symlink(member: tarfile.TarInfo, parts: list[str], layer: str) -> None:
    """Refuse a link target that is unusable or, read from the link's directory, climbs out."""
    target = member.linkname
    refuse = f"layer {layer}: refusing symlink {show(member.name)} -> {show(target)}"
    if not target or "\0" in target or len(os.fsencode(target)) >= PATH_MAX:
        raise UnpackError(f"{refuse}: not a usable link target")
    # An image is a root filesystem: an absolute target (/proc/self/fd, /usr/bin/python3.11)
    # means that path inside the image, as a container runtime or chroot reads it, and the
    # unpack never follows links. A relative target that climbs above the tree is an escape.
    resolved = os.path.normpath(os.path.join("/".join(parts[:-1]), target))
    if not target.startswith("/") and (resolved == ".." or resolved.startswith("../")):
        raise UnpackError(f"{refuse}: it points outside the tree")
