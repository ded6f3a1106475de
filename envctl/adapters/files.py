"""Small file helpers shared by every layer that touches disk: reading user files (bounded, regular
files only) and atomic writes that honour the umask."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from envctl.core.documents import MAX_BYTES, loads_toml
from envctl.errors import EnvctlError, InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # noqa: F401


def read_text(path: Path, what: str = "file", error: type[EnvctlError] = InputError) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``MAX_BYTES``), as one-line errors.

    A FIFO, a device or a directory is refused without blocking on it (``O_NONBLOCK``).
    """
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: cannot read {what}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from None


def read_bytes(path: Path, what: str = "file", error: type[EnvctlError] = InputError) -> bytes:
    """The bytes of the regular file ``path`` (at most ``MAX_BYTES``); see ``read_text``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}", hint="check the path") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}", hint="check the path") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a directory itself
        os.close(fd)
        raise error(f"{path}: cannot read {what}: not a regular file", hint="check the path")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise error(f"{path}: more than {MAX_BYTES >> 20} MiB, not a {what}", hint="check the path")
    return data


def read_toml(path: Path, what: str = "file", error: type[EnvctlError] = InputError) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax errors into one-line envctl errors."""
    return loads_toml(read_text(path, what, error), str(path), error)


def umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(executable: bool = False) -> int:
    """The mode a new file gets from ``open()`` under the umask (0o666 or 0o777 without it)."""
    return (0o777 if executable else 0o666) & ~umask()


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` only on success.

    Readers never see a half-written file, and a failure leaves the old file untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; a written file gets what open() gives
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
