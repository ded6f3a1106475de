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
import tempfile
from pathlib import Path

from envctl.core.lock import LockEntry
from envctl.errors import BuildError

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


def install_conda(package: Path, filename: str, url: str, staging: Path, prefix: str, work: Path) -> None:
    """Install one verified conda package (``package``, named ``filename``) for ``prefix``.

    ``work`` is a scratch directory (rattler's package cache lives there). Link scripts are not
    run: nothing of the build machine may end up in the image.
    """
    import rattler

    if not filename.endswith((".conda", ".tar.bz2")):
        raise BuildError(f"{filename}: not a conda package file (.conda or .tar.bz2)")
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="conda-", dir=work))
    target = staging / prefix.lstrip("/")
    try:
        archive = scratch / filename
        try:
            os.link(package, archive)
        except OSError:
            shutil.copyfile(package, archive)
        record = asyncio.run(rattler.RepoDataRecord.from_package_archive(archive))
        result = rattler.install(
            [record],
            target_prefix=target,
            cache_dir=scratch / "pkgs",
            alternative_target_prefix=prefix,
            execute_link_scripts=False,
            show_progress=False,
        )
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        _normalise_meta(target, url)
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
        """Link the package ``source`` into ``prefix`` under ``staging`` (``python`` is unused)."""
        install_conda(source, package.filename, package.url, staging, prefix, self.work)
