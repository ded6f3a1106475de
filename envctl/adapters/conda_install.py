"""Install conda packages with py-rattler into a staging root that mirrors the image.

rattler links the package into ``staging + prefix`` and patches prefix placeholders with the
image's prefix (its ``alternative_target_prefix``), so the files are right where the image puts
them. The records it writes to conda-meta/ name build-machine paths; those are normalised so the
layer only depends on the lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.core.lock import LockEntry
from envctl.errors import BuildError

if TYPE_CHECKING:
    import rattler

_BUILD_MACHINE_KEYS = ("extracted_package_dir", "package_tarball_full_path")


def _normalise_meta(target: Path, url: str) -> None:
    (target / "CACHEDIR.TAG").unlink(missing_ok=True)
    history = target / "conda-meta" / "history"
    if history.is_file():
        history.write_text("")  # rattler stamps the clock into it
    for record in sorted((target / "conda-meta").glob("*.json")):
        data = json.loads(record.read_text())
        for key in _BUILD_MACHINE_KEYS:
            data.pop(key, None)
        data["url"] = url
        if isinstance(data.get("link"), dict):
            data["link"].pop("source", None)
        record.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _real_dir(destination: Path, relative: Path, what: str) -> Path:
    """``destination / relative`` as a directory reached without following a symlink: a link one
    package of a layer made must not carry another's files out of the staging tree."""
    here = destination
    for part in relative.parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            here.mkdir()
            continue
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise BuildError(
                f"{what}: {relative} is a symlink or file in the environment, not a directory",
                hint="two packages of the lock clash on this path; re-lock without one of them",
            )
    return here


def _move_tree(source: Path, destination: Path, what: str) -> None:
    """Move every entry under ``source`` to the same place under ``destination`` (same filesystem)."""
    for directory, dirs, names in os.walk(source):
        here = Path(directory)
        there = _real_dir(destination, here.relative_to(source), what)
        for name in names + [d for d in dirs if (here / d).is_symlink()]:
            os.replace(here / name, there / name)


def _python_record(python: str, subdir: str) -> rattler.RepoDataRecord:
    """A stand-in record of the environment's Python ``X.Y`` (the base's or the lock's).

    Each layer is linked on its own, so the python package is not in the same transaction as
    a ``noarch: python`` package; rattler needs to know the Python to place its files under
    lib/pythonX.Y/site-packages. The stand-in tells it and is ignored (never linked).
    """
    import rattler

    record = rattler.PackageRecord(
        name="python",
        version=f"{python}.0",
        build=rattler.BuildString("envctl"),
        build_number=0,
        subdir=subdir,
    )
    channel = "file:///envctl-stand-in/"
    return rattler.RepoDataRecord(
        record, f"python-{python}.0-envctl.conda", f"{channel}{subdir}/python.conda", channel
    )


def install_conda(
    package: Path, filename: str, url: str, staging: Path, prefix: str, work: Path, python: str | None = None
) -> None:
    """Install one verified conda package (``package``, named ``filename``) for ``prefix``.

    ``work`` is a scratch directory (rattler's package cache lives there). Link scripts are not
    run: nothing of the build machine may end up in the image. ``python`` (``X.Y``) is the
    environment's Python, for ``noarch: python`` packages.
    """
    import rattler

    if not filename.endswith((".conda", ".tar.bz2")):
        raise BuildError(f"{filename}: not a conda package file (.conda or .tar.bz2)")
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="conda-", dir=work))
    # Linked into a prefix of its own, then moved into the staging tree: packages bucketed into
    # one layer share that tree, and rattler refuses a prefix whose records were normalised.
    root = scratch / "root"
    target = root / prefix.lstrip("/")
    try:
        archive = scratch / filename
        try:
            os.link(package, archive)
        except OSError:
            shutil.copyfile(package, archive)
        record = asyncio.run(rattler.RepoDataRecord.from_package_archive(archive))
        records = [record]
        ignored: set[str] = set()
        if python and record.name.normalized != "python":
            records.append(_python_record(python, str(record.subdir)))
            ignored.add("python")
        result = rattler.install(
            records,
            target_prefix=target,
            ignored_packages=ignored or None,
            cache_dir=scratch / "pkgs",
            alternative_target_prefix=prefix,
            execute_link_scripts=False,
            show_progress=False,
        )
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        _normalise_meta(target, url)
        staging.mkdir(parents=True, exist_ok=True)
        _move_tree(root, staging, filename)
    except BuildError:
        raise
    except Exception as exc:  # rattler raises its own exception classes, with no common root
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(f"{filename}: cannot install conda package: {message}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class CondaInstaller:
    """conda entries of a lock, linked by rattler (a ``core.build_parts.PackageInstaller``).

    ``work`` holds rattler's extraction cache (inside the blob cache, on the same filesystem).
    """

    def __init__(self, work: Path) -> None:
        self.work = work

    def install(self, source: Path, package: LockEntry, staging: Path, prefix: str, python: str) -> None:
        """Link the package ``source`` into ``prefix`` under ``staging`` for Python ``python``."""
        install_conda(source, package.filename, package.url, staging, prefix, self.work, python)
