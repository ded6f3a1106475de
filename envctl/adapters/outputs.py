"""Outputs are owned: envctl replaces only what it made (``cargo new`` refusing a non-empty
directory is the model).

Every path a user names for envctl to write (``build -o`` and ``--docker-archive``, ``render
--dockerfile``, ``export -o``, ``inventory import -o``, the lockfile) goes through here:

- ``owned_dir(target, kind, force)``: a directory output. It carries a marker (``MARKER``: what made
  it and which entries are envctl's). A missing or empty target is written; one holding this kind's
  marker is replaced (swapped in by rename, so it holds the old output or the new one); anything
  else is refused (InputError, exit 2) unless ``force``, and even then only the entries of the
  output are replaced, in place: the user's other files stay.
- ``owned_file(path, kind, force)``: a file output, written to a temporary file beside it and
  renamed over it. An existing file is replaced when ``kind`` recognises it as its own output (its
  first bytes), or with ``force``; a directory, a FIFO or a device never is.

Both refuse the pseudo-filesystems (/proc, /sys, /dev), resolve ``.`` and symbolic links first,
and honour the umask (directories 0o777, files 0o666 before it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from envctl.adapters.files import file_mode
from envctl.core.documents import loads_json
from envctl.core.shown import shown
from envctl.errors import EnvctlError, InputError

MARKER = ".envctl-output"
MARKER_SCHEMA = "envctl.output/1"
_SCRATCH = ".envctl-"  # envctl's own temporary entries inside an output directory: .envctl-new-*
_SCRATCH_KINDS = (f"{_SCRATCH}new-", f"{_SCRATCH}old-")  # and .envctl-old-*
_PSEUDO = ("/proc", "/sys", "/dev")
_HEAD = 4096


@dataclass(frozen=True)
class DirKind:
    """A kind of output directory: its name in the marker and how messages call it."""

    name: str  # "oci-layout"
    what: str  # "an OCI image layout", for messages
    made_by: str  # "envctl build -o", for messages


@dataclass(frozen=True)
class FileKind:
    """A kind of output file and how to tell one envctl wrote (from its first bytes)."""

    name: str
    what: str
    recognise: Callable[[bytes], bool]


def _resolved(target: Path, option: str) -> Path:
    """``target`` made absolute with ``.``, ``..`` and symbolic links resolved."""
    path = Path(os.path.realpath(target))
    if path == Path("/"):
        raise InputError(
            f"{option} {target}: is the root directory", hint="write the output into a directory of yours"
        )
    if any(str(path) == p or str(path).startswith(p + "/") for p in _PSEUDO):
        raise InputError(
            f"{option} {target}: {path} is on a system pseudo-filesystem, not a place for outputs",
            hint="write the output into a directory of yours",
        )
    return path


def _marker(directory: Path) -> dict[str, Any] | None:
    """The marker of an envctl output directory, or None (absent, unreadable, not ours)."""
    path = directory / MARKER
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = fh.read(65536)
    try:
        doc = loads_json(data, str(path))
    except EnvctlError:
        return None
    if not isinstance(doc, dict) or doc.get("schema") != MARKER_SCHEMA:
        return None
    entries = doc.get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, str) and "/" not in e for e in entries):
        return None
    return doc


def _mkdir_mode(path: Path) -> None:
    path.chmod(file_mode(executable=True))  # mkdtemp makes 0700


@dataclass(frozen=True)
class _DirState:
    path: Path  # resolved
    exists: bool
    theirs: tuple[str, ...]  # entries that are neither the marker nor envctl's scratch
    owned: frozenset[str]  # the entries the marker of this kind lists as envctl's
    ours: bool  # the marker says: an output of this kind


def _dir_state(target: Path, kind: DirKind, force: bool, option: str) -> _DirState:
    path = _resolved(target, option)
    if path.exists() and not path.is_dir():
        raise InputError(
            f"{option} {target}: exists and is not a directory; envctl writes {kind.what} there",
            hint="name a new or empty directory (envctl never replaces a file by a directory)",
        )
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    theirs = tuple(e for e in entries if e != MARKER and not e.startswith(_SCRATCH_KINDS))
    marker = _marker(path) if entries else None
    ours = marker is not None and marker.get("kind") == kind.name
    if theirs and not ours and not force:
        made = f"is envctl's {marker.get('kind')} output" if marker else "was not made by envctl"
        names = ", ".join(shown(name, 60) for name in theirs[:3]) + (", ..." if len(theirs) > 3 else "")
        raise InputError(
            f"{option} {target}: holds {names} and {made}; refusing to replace it",
            hint=f"name a new or empty directory, or pass --force to write {kind.what} into it "
            "(only its own entries are replaced)",
        )
    owned = frozenset(marker.get("entries", ())) if ours and marker else frozenset()
    return _DirState(path, path.exists(), theirs, owned, ours)


def check_dir_target(target: Path, kind: DirKind, *, force: bool = False, option: str = "-o") -> Path:
    """The resolved ``target`` when envctl may write ``kind`` there; InputError (exit 2) else.

    Commands call it before their work, so a refused output costs nothing; ``owned_dir`` checks
    again when it writes.
    """
    return _dir_state(target, kind, force, option).path


@contextlib.contextmanager
def owned_dir(target: Path, kind: DirKind, *, force: bool = False, option: str = "-o") -> Iterator[Path]:
    """A temporary directory to fill; on success it becomes ``target`` (see the module doc)."""
    state = _dir_state(target, kind, force, option)
    path = state.path
    swap = state.ours and set(state.theirs) <= state.owned and _can_rename(path)
    if not state.exists or swap:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH}new-", dir=path))
    try:
        _mkdir_mode(scratch)
        yield scratch
        made = sorted(p.name for p in scratch.iterdir() if p.name != MARKER)
        _write_marker(scratch, kind, made)
        if not state.exists:
            os.replace(scratch, path)
        elif swap:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(scratch, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _replace_in_place(scratch, path, made, state.owned)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def _can_rename(path: Path) -> bool:
    """Whether ``path`` can be swapped by rename: not a mount point, not this process's cwd or
    one of its parents (renaming that away would leave the shell in a deleted directory)."""
    if os.path.ismount(path):
        return False
    try:
        cwd = os.getcwd()
    except OSError:
        return True
    return not (cwd == str(path) or cwd.startswith(str(path).rstrip("/") + "/"))


def _write_marker(directory: Path, kind: DirKind, entries: list[str]) -> None:
    doc = {"schema": MARKER_SCHEMA, "kind": kind.name, "made_by": kind.made_by, "entries": entries}
    (directory / MARKER).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _replace_in_place(scratch: Path, path: Path, made: list[str], owned: frozenset[str]) -> None:
    """Move each new entry over the old one by rename; drop the old output's other entries."""
    trash = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH}old-", dir=path))
    try:
        for name in [*made, MARKER]:
            if os.path.lexists(path / name):
                os.replace(path / name, trash / name)
            os.replace(scratch / name, path / name)
        for name in owned - set(made):
            if os.path.lexists(path / name):
                os.replace(path / name, trash / name)
        for leftover in path.iterdir():  # scratch of an earlier run that crashed
            if leftover.name.startswith(_SCRATCH_KINDS) and leftover not in (trash, scratch):
                shutil.rmtree(leftover, ignore_errors=True)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def check_file_target(path: Path, kind: FileKind, *, force: bool = False, option: str = "-o") -> Path:
    """The resolved ``path`` when envctl may write ``kind`` there; InputError (exit 2) else."""
    resolved = _resolved(path, option)
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        return resolved
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write there: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{option} {path}: is a directory", hint=f"name a file to write {kind.what} into")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{option} {path}: is not a regular file (a device, FIFO or socket); envctl will not replace it",
            hint="name a regular file, or leave -o out to print to stdout where that is offered",
        )
    if force or _recognised(resolved, kind):
        return resolved
    raise InputError(
        f"{option} {path}: exists and is not {kind.what}; refusing to replace it",
        hint="name a new file, or pass --force to replace it",
    )


def _recognised(path: Path, kind: FileKind) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError:
        return False
    return not head or kind.recognise(head)  # an empty file holds nothing to lose


@contextlib.contextmanager
def owned_file(
    path: Path,
    kind: FileKind,
    *,
    force: bool = False,
    option: str = "-o",
    binary: bool = True,
    executable: bool = False,
) -> Iterator[IO[Any]]:
    """A file object to write ``kind`` into; it replaces ``path`` (atomically) when the block
    succeeds and leaves the old file untouched when it fails. Its mode is the umask's (with the
    execute bits for ``executable``)."""
    resolved = check_file_target(path, kind, force=force, option=option)
    resolved.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{resolved.name}.", suffix=".tmp", dir=resolved.parent)
    try:
        os.fchmod(fd, file_mode(executable))
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, resolved)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_owned_file(
    path: Path,
    data: str | bytes,
    kind: FileKind,
    *,
    force: bool = False,
    option: str = "-o",
    executable: bool = False,
) -> None:
    """Write ``data`` as ``kind`` at ``path`` through ``owned_file``."""
    binary = isinstance(data, bytes)
    with owned_file(path, kind, force=force, option=option, binary=binary, executable=executable) as fh:
        fh.write(data)


def _starts_with(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _docker_archive(head: bytes) -> bool:
    """A tar whose first header is envctl's PAX global header (``envctl.output``)."""
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(head + b"\0" * 1024), mode="r:") as tar:
            return tar.pax_headers.get("envctl.output") == DOCKER_ARCHIVE.name
    except (tarfile.TarError, OSError, EOFError):
        return False


OCI_LAYOUT = DirKind("oci-layout", "an OCI image layout", "envctl build -o")
DOCKERFILE_CONTEXT = DirKind("dockerfile-context", "a Dockerfile and its context", "envctl render")
EXPORT = FileKind("export", "an envctl export", _starts_with(b"# envctl export"))
LOCKFILE = FileKind("lock", "a lockfile envctl wrote", _starts_with(b"# Generated by envctl lock"))
INVENTORY = FileKind(
    "inventory",
    "an inventory envctl wrote",
    _starts_with(b"# envctl inventory imported from", b"# sandbox cluster written by"),
)
DOCKER_ARCHIVE = FileKind("docker-archive", "a docker-archive envctl wrote", _docker_archive)
