"""A tree being unpacked: each entry resolved inside it and written, layer after layer.

Standard library only (it travels to nodes in the agent bundle). ``Tree`` reaches the tree only
through directory descriptors: it resolves a name the way the kernel would, following a symlink
met on the way only while it stays inside the tree; applies whiteouts and opaque directories
(sparing what the same layer wrote, per OCI); makes directories, files, symlinks and hardlinks,
replacing, never following, what is in the way; counts entries and bytes against the limits and
the free space; and, once every layer is applied, checks that no symlink climbs out through the
others. What an entry may be is ``unpack_policy``'s; reading the tar is ``unpack_tar``'s.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator

from envctl.node.checks import show
from envctl.node.dirfd import OPEN_DIR, OPEN_NEW_FILE, lstat_at, remove_tree_at
from envctl.node.unpack_policy import (
    MAX_HOPS,
    OPAQUE,
    WHITEOUT,
    WHITEOUT_META,
    Limits,
    UnpackError,
    check_symlink,
    entry_parts,
    os_error,
)
from envctl.node.unpack_tar import BoundedHeader, write_member


class _Escape(Exception):
    """A name resolved to a place above the tree (or through an absolute link)."""


class Tree:
    """A tree being unpacked, reached only through directory descriptors."""

    def __init__(self, root: int, where: str, limits: Limits) -> None:
        self.root, self.where, self.limits = root, where, limits
        self.entries = self.bytes = 0
        self.free = -1  # bytes free for the tree, as last looked up
        # the last parent directory looked up (tars list a directory's entries together);
        # dropped once anything that could be on a path (a directory, a link) is removed
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._stale = False

    def close(self) -> None:
        self._forget()
        os.close(self.root)

    def _forget(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
        self._cached, self._stale = None, False

    # ------------------------------------------------------------ resolving names
    def walk(self, parts: list[str], what: str, *, create: bool, lenient: bool = False) -> int | None:
        """Open directory ``parts`` as the kernel resolves it from the root, following symlinks
        only inside the tree; the descriptor is the caller's. ``_Escape`` when the path climbs
        above the root (or, unless ``lenient``, meets an absolute link). A missing directory is
        made (``create``) or gives None; a file in the way is refused, or None if ``lenient``."""
        stack = [os.dup(self.root)]
        pending = list(reversed(parts))
        hops = 0
        try:
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) == 1:
                        raise _Escape()
                    os.close(stack.pop())
                    continue
                if len(stack) > self.limits.max_depth:
                    if lenient:
                        return None
                    raise UnpackError(f"{what}: its path is deeper than {self.limits.max_depth} directories")
                try:
                    fd = os.open(part, OPEN_DIR, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(part, 0o777, dir_fd=stack[-1])  # tars may omit parent entries
                    fd = os.open(part, OPEN_DIR, dir_fd=stack[-1])
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        if lenient:
                            return None
                        raise UnpackError(f"{what}: {show(part)} on its path is not a directory") from None
                    target = os.readlink(part, dir_fd=stack[-1])
                    hops += 1
                    if target.startswith("/"):
                        if lenient:
                            return None
                        raise _Escape() from None
                    if hops > MAX_HOPS:
                        if lenient:
                            return None
                        raise UnpackError(f"{what}: too many levels of symbolic links") from None
                    pending.extend(reversed(target.split("/")))
                    continue
                stack.append(fd)
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def directory(self, parts: list[str], what: str, *, create: bool) -> int | None:
        """The (borrowed) descriptor of directory ``parts``, or None if missing and not ``create``."""
        if not parts:
            return self.root
        if self._stale:
            self._forget()
        key = tuple(parts)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        try:
            fd = self.walk(parts, what, create=create)
        except _Escape:
            raise UnpackError(f"{what}: its parent leads outside the tree") from None
        if fd is not None:
            self._forget()
            self._cached = (key, fd)
        return fd

    # ------------------------------------------------------------ layers and entries
    def apply(self, layer: str) -> None:
        """Apply one layer over the tree."""
        short = os.path.basename(layer)[:12]
        written: set[str] = set()
        try:
            with tarfile.open(layer, "r|*", tarinfo=BoundedHeader) as tar:
                for member in tar:
                    self.entries += 1
                    if self.entries > self.limits.max_entries:
                        raise UnpackError(
                            f"layer {short}: the image has more than {self.limits.max_entries} entries"
                            " (limit: inventory key unpack_max_entries)"
                        )
                    try:
                        self.entry(tar, member, short, written)
                    except OSError as exc:
                        raise os_error(exc, self.where, f"{show(member.name)} of layer {short}") from exc
                    except (ValueError, OverflowError) as exc:  # a NUL, an mtime past 2262, ...
                        raise UnpackError(
                            f"layer {short}: refusing {show(member.name)}: {show(str(exc))}"
                        ) from exc
        except (tarfile.TarError, EOFError, zlib.error) as exc:  # zstd, truncated or foreign data
            raise UnpackError(
                f"layer {short}: not a readable tar (plain, gzip, bzip2 or xz): {show(str(exc))}"
            ) from exc

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, layer: str, written: set[str]) -> None:
        """Apply one entry; ``written`` holds what this layer made (whiteouts spare it, per OCI)."""
        parts = entry_parts(member.name, layer, self.limits)
        if not parts:
            return  # the root itself ("./")
        what = f"layer {layer}: refusing {show(member.name)}"
        leaf, parent = parts[-1], parts[:-1]
        if leaf == OPAQUE:
            fd = self.directory(parent, what, create=True)
            assert fd is not None
            prefix = "/".join(parent)
            for child in os.listdir(fd):
                if (f"{prefix}/{child}" if prefix else child) not in written:
                    self.remove(fd, child)
            return
        if leaf.startswith(WHITEOUT_META):
            return
        if leaf.startswith(WHITEOUT):
            victim = leaf[len(WHITEOUT) :]
            if victim in ("", ".", ".."):
                raise UnpackError(f"layer {layer}: refusing whiteout {show(member.name)}: it names no entry")
            if "/".join([*parent, victim]) not in written:
                fd = self.directory(parent, what, create=False)
                if fd is not None:
                    self.remove(fd, victim)
            return
        fd = self.directory(parent, what, create=True)
        assert fd is not None
        self.extract(tar, member, fd, parts, layer, what)
        rel = "/".join(parts)
        written.add(rel)
        for i in range(len(parts) - 1, 0, -1):  # its directories are this layer's too
            above = "/".join(parts[:i])
            if above in written:
                break
            written.add(above)

    def remove(self, dir_fd: int, name: str, st: os.stat_result | None = None) -> None:
        """Delete ``name`` (a whole directory included) without following it."""
        st = st or lstat_at(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            remove_tree_at(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
        self._stale = self._stale or not stat.S_ISREG(st.st_mode)

    def extract(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int, parts: list[str], layer: str, what: str
    ) -> None:
        """Make the entry ``parts[-1]`` in directory ``fd``, replacing (never following) what is there."""
        leaf = parts[-1]
        st = lstat_at(fd, leaf)
        mode = member.mode & 0o1777  # never setuid/setgid from an image
        times = (member.mtime, member.mtime)
        if member.isdir():
            if st is not None and not stat.S_ISDIR(st.st_mode):
                self.remove(fd, leaf, st)  # a link or file in the way is replaced, not followed
                st = None
            if st is None:
                os.mkdir(leaf, 0o700, dir_fd=fd)
            dfd = os.open(leaf, OPEN_DIR, dir_fd=fd)
            try:
                os.fchmod(dfd, mode | 0o700)
                os.utime(dfd, times)
            finally:
                os.close(dfd)
        elif member.isreg():
            self.reserve(member.size, member.name, layer)
            if st is not None:
                self.remove(fd, leaf, st)
            ffd = os.open(leaf, OPEN_NEW_FILE, 0o600, dir_fd=fd)
            try:
                write_member(tar, member, ffd)
                os.fchmod(ffd, mode)
                os.utime(ffd, times)
            finally:
                os.close(ffd)
        elif member.issym():
            check_symlink(member, parts, layer)
            if st is not None:
                self.remove(fd, leaf, st)
            os.symlink(member.linkname, leaf, dir_fd=fd)
            os.utime(leaf, times, dir_fd=fd, follow_symlinks=False)
        elif member.islnk():
            sfd, sleaf = self.link_source(member, layer)
            try:
                if st is not None:
                    self.remove(fd, leaf, st)
                os.link(sleaf, leaf, src_dir_fd=sfd, dst_dir_fd=fd, follow_symlinks=False)
            finally:
                os.close(sfd)
        else:
            kind = "device node" if member.ischr() or member.isblk() else "special file"
            raise UnpackError(
                f"layer {layer}: refusing {'FIFO' if member.isfifo() else kind} {show(member.name)}"
            )

    def reserve(self, size: int, name: str, layer: str) -> None:
        """Count a regular file's (apparent) size against the limit and the free space."""
        if size < 0:
            raise UnpackError(f"layer {layer}: refusing {show(name)}: negative size")
        if self.bytes + size > self.limits.max_bytes:
            raise UnpackError(
                f"layer {layer}: refusing {show(name)}: the image unpacks to more than"
                f" {self.limits.max_bytes} bytes (limit: inventory key unpack_max_bytes)"
            )
        self.bytes += size
        if size > self.free:  # look again only when the estimate says it may not fit
            st = os.statvfs(self.root)
            self.free = st.f_bavail * st.f_frsize
            if size > self.free:
                raise UnpackError(
                    f"{self.where}: No space left on device for {show(name)} of layer {layer}"
                    f" ({size} bytes, {self.free} free)",
                    "nospace",
                )
        self.free -= size

    def link_source(self, member: tarfile.TarInfo, layer: str) -> tuple[int, str]:
        """(directory descriptor, name) of a hardlink's source: a regular file inside the tree."""
        parts = entry_parts(member.linkname, layer, self.limits, member.name)
        refuse = UnpackError(
            f"layer {layer}: refusing hardlink {show(member.name)} -> {show(member.linkname)}:"
            " not a file inside the tree"
        )
        what = f"layer {layer}: refusing hardlink {show(member.name)}"
        for _ in range(MAX_HOPS):
            if not parts or parts[-1] in (".", ".."):
                raise refuse
            try:
                fd = self.walk(parts[:-1], what, create=False)
            except _Escape:
                raise refuse from None
            if fd is None:
                raise refuse
            st = lstat_at(fd, parts[-1])
            if st is not None and stat.S_ISREG(st.st_mode):
                return fd, parts[-1]
            is_link = st is not None and stat.S_ISLNK(st.st_mode)
            target = os.readlink(parts[-1], dir_fd=fd) if is_link else ""
            os.close(fd)
            if not is_link or target.startswith("/"):  # missing, a directory, a way out
                raise refuse
            parts = parts[:-1] + target.split("/")  # resolved from the link's own directory
        raise refuse

    # ------------------------------------------------------------ the finished tree
    def check_links(self) -> None:
        """Refuse a relative symlink that, followed as the kernel follows it (through the other
        links of the finished tree), climbs above the tree: ``b -> .`` and ``c -> b/..`` each
        look harmless alone. A target without ``..`` cannot climb when no other link does."""
        for parts, name, target in self._symlinks():
            if target.startswith("/") or ".." not in target.split("/"):
                continue
            try:
                fd = self.walk(parts + target.split("/"), "", create=False, lenient=True)
            except _Escape:
                raise UnpackError(
                    f"refusing symlink {show('/'.join([*parts, name]))} -> {show(target)}:"
                    " it points outside the tree (through the links on its way)"
                ) from None
            if fd is not None:
                os.close(fd)

    def _symlinks(self) -> Iterator[tuple[list[str], str, str]]:
        """(directory parts, name, target) of every symlink in the tree, depth first."""

        def scan(fd: int, parts: list[str]) -> tuple[list[tuple[list[str], str, str]], list[str]]:
            links, dirs = [], []
            with os.scandir(fd) as entries:
                for e in entries:
                    if e.is_symlink():
                        links.append((parts, e.name, os.readlink(e.name, dir_fd=fd)))
                    elif e.is_dir(follow_symlinks=False):
                        dirs.append(e.name)
            return links, dirs

        top = os.dup(self.root)
        links, dirs = scan(top, [])
        frames: list[tuple[list[str], int, Iterator[str]]] = [([], top, iter(dirs))]
        try:
            yield from links
            while frames:
                parts, fd, names = frames[-1]
                name = next(names, None)
                if name is None:
                    frames.pop()
                    os.close(fd)
                    continue
                child = os.open(name, OPEN_DIR, dir_fd=fd)
                links, dirs = scan(child, [*parts, name])
                frames.append(([*parts, name], child, iter(dirs)))
                yield from links
        finally:
            for frame in frames:
                os.close(frame[1])
