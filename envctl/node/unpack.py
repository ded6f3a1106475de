"""Safe unpacking of OCI layers into a directory, and a cheap fingerprint of the result.

Standard library only: this module travels to nodes inside the agent bundle and runs as root.
Every entry is resolved inside the tree the way container runtimes do it (containerd's RootPath,
umoci's securejoin): from directory descriptor to directory descriptor (``O_DIRECTORY |
O_NOFOLLOW``, ``dir_fd=``), following a symlink met on the way only while it stays inside the
tree, and never doing anything *through* the entry's own name: a directory, file or link that
comes over a symlink replaces the link. Refused, with an error naming layer and entry: absolute
names, ``..``, whiteouts that name no entry (``.wh.``, ``.wh..``, ``.wh...``), relative symlinks
that climb above the tree (also through other links: ``b -> .``, ``c -> b/..``), hardlinks to
anything but a file inside it, device nodes and FIFOs, and anything past the limits (entries,
name length, depth, unpacked bytes counted at apparent size, free space). The tree is built under
a temporary name beside the target and renamed into place only when every layer applied; a
failure removes that temporary tree and touches nothing else.

This module holds the entry points (``unpack_layers``, ``fingerprint``); the work is split by
concern: ``unpack_policy`` (limits, the error, the pure checks of names and link targets),
``unpack_tar`` (bounded reading of a layer's tar), ``unpack_tree`` (resolving and writing each
entry through directory descriptors) and ``dirfd`` (descriptor-relative primitives).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable

from envctl.node.dirfd import CLOEXEC, OPEN_DIR, remove_tree_at
from envctl.node.unpack_policy import Limits, os_error
from envctl.node.unpack_tree import Tree


def unpack_layers(layers: Iterable[str], target: str, limits: Limits | None = None) -> None:
    """Apply the (gzip) tar ``layers`` in order into a new directory ``target``, atomically."""
    where, base = os.path.split(os.path.abspath(target))
    tmp = f".{base}.partial-{os.getpid()}"
    parent = os.open(where, os.O_RDONLY | os.O_DIRECTORY | CLOEXEC)
    try:
        try:
            remove_tree_at(parent, tmp)  # left by a crashed run that had our pid
            os.mkdir(tmp, 0o755, dir_fd=parent)
        except OSError as exc:
            raise os_error(exc, where, f"the temporary tree {tmp}") from exc
        try:
            root = os.open(tmp, OPEN_DIR, dir_fd=parent)
            tree = Tree(root, where, limits or Limits())
            try:
                for layer in layers:
                    tree.apply(layer)
                tree.check_links()
            finally:
                tree.close()
            try:
                os.rename(tmp, base, src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                raise os_error(exc, where, f"the tree {base}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree_at(parent, tmp)
            raise
    finally:
        os.close(parent)


def fingerprint(tree: str) -> str:
    """Hash of every entry's path, type, mode, size, mtime and link target (no file contents).

    Cheap enough for ``status`` on every node; it changes when a file is edited, added, removed
    or re-permissioned. ``__pycache__`` is ignored: running the environment writes it.
    """
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            # a directory's size and mtime move whenever anything (a cache) is added to it
            size, mtime = (0, 0) if stat.S_ISDIR(st.st_mode) else (st.st_size, st.st_mtime_ns)
            rel = os.path.relpath(path, tree)
            line = f"{rel}\0{st.st_mode:o}\0{size}\0{mtime}\0{link}\n"
            h.update(line.encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()
