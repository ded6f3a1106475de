"""Install wheels with pypa/installer into a staging root that mirrors the image's filesystem."""

from __future__ import annotations

import zipfile
from pathlib import Path

from envctl.core.lock import LockEntry
from envctl.errors import BuildError


def venv_scheme(prefix: str, python: str) -> dict[str, str]:
    """The install scheme of a POSIX venv at ``prefix`` for Python ``major.minor``."""
    site = f"{prefix}/lib/python{python}/site-packages"
    return {
        "purelib": site,
        "platlib": site,
        "headers": f"{prefix}/include/site/python{python}",
        "scripts": f"{prefix}/bin",
        "data": prefix,
    }


def install_wheel(wheel: Path, filename: str, staging: Path, prefix: str, python: str) -> None:
    """Install ``wheel`` (cached under its digest, so ``filename`` gives its real name) into
    ``staging`` + ``prefix``; script shebangs point at the venv's ``bin/python``.

    No bytecode is compiled: .pyc files would embed build-machine state and change digests.
    """
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    destination = SchemeDictionaryDestination(
        venv_scheme(prefix, python),
        interpreter=f"{prefix}/bin/python",
        script_kind="posix",
        bytecode_optimization_levels=(),
        destdir=str(staging),
        # packages bucketed into one layer may share namespace files (nvidia/__init__.py)
        overwrite_existing=True,
    )
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.filename = filename  # WheelFile parses name and version from it
            source = WheelFile(archive)
            # every file's hash and size against RECORD, before anything is written
            source.validate_record(validate_contents=False)  # the lock pinned the whole file
            install(source, destination, additional_metadata={"INSTALLER": b"envctl\n"})
    except (InstallerError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BuildError(
            f"{filename}: cannot install wheel: {exc}", hint="the wheel is broken or not a wheel"
        ) from exc


class WheelInstaller:
    """pip entries of a lock, installed with pypa/installer (a ``core.build_parts.PackageInstaller``)."""

    def install(self, source: Path, package: LockEntry, staging: Path, prefix: str, python: str) -> None:
        """Install the wheel ``source`` into the venv at ``prefix`` under ``staging``."""
        install_wheel(source, package.filename, staging, prefix, python)
