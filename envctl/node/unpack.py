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
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from envctl.node.checks import show

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk, ...): skipped, as runtimes do
NAME_MAX = 255  # bytes of one path component (Linux)
PATH_MAX = 4096  # bytes of a path or a link target with its NUL (Linux)
MAX_HOPS = 40  # symlinks followed while resolving one name (Linux's MAXSYMLINKS)
MAX_HEADER = 1 << 20  # bytes tarfile may read for one member's headers (pax, long names, sparse maps)
MAX_HEADER_CHAIN = 32  # extended headers in a row before one member (tarfile recurses on each)
CHUNK = 1 << 20
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


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


class _Escape(Exception):
    """A name resolved to a place above the tree (or through an absolute link)."""


def unpack_layers(layers: Iterable[str], target: str, limits: Limits | None = None) -> None:
    """Apply the (gzip) tar ``layers`` in order into a new directory ``target``, atomically."""
    where, base = os.path.split(os.path.abspath(target))
    tmp = f".{base}.partial-{os.getpid()}"
    parent = os.open(where, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        try:
            remove_tree_at(parent, tmp)  # left by a crashed run that had our pid
            os.mkdir(tmp, 0o755, dir_fd=parent)
        except OSError as exc:
            raise _os_error(exc, where, f"the temporary tree {tmp}") from exc
        try:
            root = os.open(tmp, _DIR, dir_fd=parent)
            tree = _Tree(root, where, limits or Limits())
            try:
                for layer in layers:
                    tree.apply(layer)
                tree.check_links()
            finally:
                tree.close()
            try:
                os.rename(tmp, base, src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                raise _os_error(exc, where, f"the tree {base}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree_at(parent, tmp)
            raise
    finally:
        os.close(parent)


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
    top = os.open(name, _DIR, dir_fd=dir_fd)
    frames: list[tuple[int, str, int, list[str]]] = [(dir_fd, name, top, os.listdir(top))]
    try:
        while frames:
            parent, dname, fd, children = frames[-1]
            if children:
                child = children.pop()
                cst = os.stat(child, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(cst.st_mode):
                    cfd = os.open(child, _DIR, dir_fd=fd)
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


def _os_error(exc: OSError, where: str, what: str) -> UnpackError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UnpackError(f"{where}: No space left on device while unpacking {what}", "nospace")
    return UnpackError(f"{where}: {exc.strerror} while unpacking {what}", "os")


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class _Window:
    """A member's header reads, bounded: a few bytes of gzip must not become gigabytes of
    pax header, long name or sparse map in memory."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.left = inner, MAX_HEADER
        self.chain = 0  # extended headers seen so far for this member

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.left:
            raise tarfile.HeaderError(f"a member's headers exceed {MAX_HEADER} bytes")
        self.left -= n
        data: bytes = self.inner.read(n)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Header(tarfile.TarInfo):
    """tarfile's member with its header processing bounded (``_proc_member`` is tarfile's
    documented override point)."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if isinstance(tar.fileobj, _Window):  # an extended header's next header
            tar.fileobj.chain += 1
            if tar.fileobj.chain > MAX_HEADER_CHAIN:
                raise tarfile.HeaderError(f"more than {MAX_HEADER_CHAIN} extended headers in a row")
            return super()._proc_member(tar)  # type: ignore[misc, no-any-return]
        inner = tar.fileobj
        tar.fileobj = _Window(inner)  # type: ignore[assignment]
        try:
            return super()._proc_member(tar)  # type: ignore[misc, no-any-return]
        finally:
            tar.fileobj = inner


def _copy(source: Any, fd: int, size: int) -> None:
    """``size`` bytes from ``source`` to ``fd``, runs of zeros seeked over (left as holes)."""
    left = size
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        left -= len(chunk)
        if chunk.count(0) == len(chunk):
            os.lseek(fd, len(chunk), os.SEEK_CUR)
            continue
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> None:
    """A regular member's bytes to ``fd``. A sparse member's data regions are read from the
    archive (stored one after the other) to their offsets: its holes are skipped, never
    generated, so a 2 GB hole costs nothing."""
    if member.sparse is None:
        source = tar.extractfile(member)
        assert source is not None
        _copy(source, fd, member.size)
    else:
        stream: Any = tar.fileobj
        stream.seek(member.offset_data)  # forward only, as a stream allows
        regions: list[tuple[int, int]] = list(member.sparse)  # type: ignore[arg-type]  # (offset, size)
        for offset, numbytes in regions:
            if offset < 0 or numbytes < 0 or offset + numbytes > member.size:
                raise ValueError(f"sparse region {offset}+{numbytes} outside the file's {member.size} bytes")
            os.lseek(fd, offset, os.SEEK_SET)
            _copy(stream, fd, numbytes)
    os.ftruncate(fd, member.size)


class _Tree:
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
                    fd = os.open(part, _DIR, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(part, 0o777, dir_fd=stack[-1])  # tars may omit parent entries
                    fd = os.open(part, _DIR, dir_fd=stack[-1])
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

    def parts(self, name: str, layer: str, hardlink: str | None = None) -> list[str]:
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
        if len(parts) > self.limits.max_depth:
            raise UnpackError(
                f"layer {layer}: refusing {what}: deeper than {self.limits.max_depth} directories"
                " (limit: inventory key unpack_max_depth)"
            )
        if any(len(os.fsencode(p)) > NAME_MAX for p in parts):
            raise UnpackError(f"layer {layer}: refusing {what}: a name longer than {NAME_MAX} bytes")
        return parts

    # ------------------------------------------------------------ layers and entries
    def apply(self, layer: str) -> None:
        """Apply one layer over the tree."""
        short = os.path.basename(layer)[:12]
        written: set[str] = set()
        try:
            with tarfile.open(layer, "r|*", tarinfo=_Header) as tar:
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
                        raise _os_error(exc, self.where, f"{show(member.name)} of layer {short}") from exc
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
        parts = self.parts(member.name, layer)
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
        st = st or _lstat(dir_fd, name)
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
        st = _lstat(fd, leaf)
        mode = member.mode & 0o1777  # never setuid/setgid from an image
        times = (member.mtime, member.mtime)
        if member.isdir():
            if st is not None and not stat.S_ISDIR(st.st_mode):
                self.remove(fd, leaf, st)  # a link or file in the way is replaced, not followed
                st = None
            if st is None:
                os.mkdir(leaf, 0o700, dir_fd=fd)
            dfd = os.open(leaf, _DIR, dir_fd=fd)
            try:
                os.fchmod(dfd, mode | 0o700)
                os.utime(dfd, times)
            finally:
                os.close(dfd)
        elif member.isreg():
            self.reserve(member.size, member.name, layer)
            if st is not None:
                self.remove(fd, leaf, st)
            ffd = os.open(leaf, _NEW_FILE, 0o600, dir_fd=fd)
            try:
                _write_member(tar, member, ffd)
                os.fchmod(ffd, mode)
                os.utime(ffd, times)
            finally:
                os.close(ffd)
        elif member.issym():
            self.check_symlink(member, parts, layer)
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

    def check_symlink(self, member: tarfile.TarInfo, parts: list[str], layer: str) -> None:
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

    def link_source(self, member: tarfile.TarInfo, layer: str) -> tuple[int, str]:
        """(directory descriptor, name) of a hardlink's source: a regular file inside the tree."""
        parts = self.parts(member.linkname, layer, member.name)
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
            st = _lstat(fd, parts[-1])
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
                child = os.open(name, _DIR, dir_fd=fd)
                links, dirs = scan(child, [*parts, name])
                frames.append(([*parts, name], child, iter(dirs)))
                yield from links
        finally:
            for frame in frames:
                os.close(frame[1])


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
