"""File operations relative to a directory descriptor that never follow a symlink.

Standard library only (it travels to nodes in the agent bundle). The open flags every walk of a
tree uses (a directory opened with ``O_NOFOLLOW``, a new file that must not exist), an ``lstat``
that answers None for a missing name, and the removal of a whole tree (the unpack's temporary
trees, ``gc``'s and ``trees``' old ones) that never steps through a link.
"""

from __future__ import annotations

import os
import stat

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
OPEN_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC


def remove_tree_at(dir_fd: int, name: str) -> None:
    """Delete ``name`` in directory ``dir_fd`` and all below it, never following a symlink
    (iterative: a tree of any depth)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, OPEN_DIR, dir_fd=dir_fd)
    frames: list[tuple[int, str, int, list[str]]] = [(dir_fd, name, top, os.listdir(top))]
    try:
        while frames:
            parent, dname, fd, children = frames[-1]
            if children:
                child = children.pop()
                cst = os.stat(child, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(cst.st_mode):
                    cfd = os.open(child, OPEN_DIR, dir_fd=fd)
                    frames.append((fd, child, cfd, os.listdir(cfd)))
                else:
                    os.unlink(child, dir_fd=fd)
                continue
            frames.pop()
            os.close(fd)
            os.rmdir(dname, dir_fd=parent)
    finally:
        for frame in frames:
            os.close(frame[2])


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``name``'s own status in ``dir_fd`` (a link is not followed), None if there is none."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
