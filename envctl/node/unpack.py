"""Safe unpacking of OCI layers into a directory, and a cheap fingerprint of the result.

Standard library only: this module travels to nodes inside the agent bundle. Every entry is
checked before anything is written: absolute names, ``..``, links that leave the tree, writes
through symlinks, device nodes and FIFOs are refused with an error naming layer and entry. The
tree is built under a temporary name and renamed into place only when every layer applied, so a
failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class UnpackError(Exception):
    """A layer holds an entry that must not be unpacked."""


def unpack_layers(layers: Iterable[str], target: str) -> None:
    """Apply the (gzip) tar ``layers`` in order into a new directory ``target``, atomically."""
    parent = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(parent, f".{os.path.basename(target)}.partial-{os.getpid()}")
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)
    os.mkdir(tmp, 0o755)
    try:
        for layer in layers:
            _apply_layer(layer, tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _clean_name(layer: str, name: str, entry: str | None = None) -> str:
    """The entry's path relative to the tree root, or UnpackError if it could leave the tree."""
    what = f"{name!r}" if entry is None else f"hardlink {entry!r} -> {name!r}"
    if name.startswith("/"):
        raise UnpackError(f"layer {_short(layer)}: refusing absolute path {what}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"layer {_short(layer)}: refusing path with '..': {what}")
    return "/".join(parts)


def _short(layer: str) -> str:
    return os.path.basename(layer)[:12]


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _apply_layer(layer: str, root: str) -> None:
    try:
        _apply_tar(layer, root)
    except tarfile.TarError as exc:  # zstd layers, truncated or foreign data
        raise UnpackError(
            f"layer {_short(layer)}: not a readable tar (plain, gzip, bzip2 or xz): {exc}"
        ) from exc


def _apply_tar(layer: str, root: str) -> None:
    real_root = os.path.realpath(root)
    written: set[str] = set()
    with tarfile.open(layer, "r|*") as tar:
        for member in tar:
            rel = _clean_name(layer, member.name)
            if not rel:
                continue
            dest = os.path.join(root, rel)
            parent = os.path.realpath(os.path.dirname(dest))
            if not _inside(real_root, parent):  # a symlinked parent would redirect the write
                raise UnpackError(
                    f"layer {_short(layer)}: refusing {member.name!r}: its parent leads outside the tree"
                )
            os.makedirs(os.path.dirname(dest), exist_ok=True)  # tars may omit parent entries
            base = os.path.basename(rel)
            if base == OPAQUE:
                for child in os.listdir(os.path.dirname(dest)):
                    if os.path.join(os.path.dirname(rel), child) not in written:
                        _remove(os.path.join(os.path.dirname(dest), child))
                continue
            if base.startswith(WHITEOUT):
                _remove(os.path.join(os.path.dirname(dest), base[len(WHITEOUT) :]))
                continue
            _extract(tar, member, layer, rel, dest, root)
            written.add(rel)


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, layer: str, rel: str, dest: str, root: str
) -> None:
    mode = member.mode & 0o1777  # never setuid/setgid from an image
    if member.isdir():
        if os.path.lexists(dest) and not os.path.isdir(dest):
            os.unlink(dest)
        os.makedirs(dest, exist_ok=True)
        os.chmod(dest, mode | 0o700)
    elif member.isreg():
        if os.path.lexists(dest):
            _remove(dest)
        source = tar.extractfile(member)
        assert source is not None
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.chmod(dest, mode)
    elif member.issym():
        target = member.linkname
        # An image is a root filesystem: an absolute target (/proc/self/fd, /usr/bin/python3.11)
        # means that path inside the image, as a container runtime or chroot reads it, and the
        # unpack never follows links (O_NOFOLLOW, parents checked with realpath). A relative
        # target that climbs above the tree is an escape even there.
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if not target.startswith("/") and (resolved == ".." or resolved.startswith("../")):
            raise UnpackError(
                f"layer {_short(layer)}: refusing symlink {member.name!r} -> {target!r}:"
                " it points outside the tree"
            )
        if os.path.lexists(dest):
            _remove(dest)
        os.symlink(target, dest)
        os.utime(dest, (member.mtime, member.mtime), follow_symlinks=False)
        return
    elif member.islnk():
        source_rel = _clean_name(layer, member.linkname, member.name)
        real = os.path.realpath(os.path.join(root, source_rel))
        if not _inside(os.path.realpath(root), real) or not os.path.isfile(real):
            raise UnpackError(
                f"layer {_short(layer)}: refusing hardlink {member.name!r} -> {member.linkname!r}:"
                " not a file inside the tree"
            )
        if os.path.lexists(dest):
            _remove(dest)
        os.link(real, dest)
        return
    else:
        what = "device node" if member.ischr() or member.isblk() else "special file"
        if member.isfifo():
            what = "FIFO"
        raise UnpackError(f"layer {_short(layer)}: refusing {what} {member.name!r}")
    os.utime(dest, (member.mtime, member.mtime))


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
