"""`envctl export`: a lock rendered for other tools.

- requirements: pip entries as direct references with ``--hash=sha256:`` (exact files, any index)
- pylock: PEP 751 pylock.toml, built and validated with ``packaging.pylock``
- explicit: conda's ``@EXPLICIT`` file (``url#md5``), pip entries as ``# pip`` lines
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from envctl.core import toml_out
from envctl.core.lock import LockData, LockEntry
from envctl.core.names import PIP_URL_SCHEMES, valid_sha256, valid_url
from envctl.core.solution import PLATFORMS
from envctl.errors import InputError, LockError

Format = Literal["requirements", "pylock", "explicit"]
FORMATS: tuple[Format, ...] = ("requirements", "pylock", "explicit")


@dataclass(frozen=True)
class ExportResult:
    """What was exported (schema ``envctl.export/1`` in JSON); ``text`` is the rendered file."""

    format: Format
    platform: str
    text: str
    packages: int
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON form (without the text itself)."""
        return {
            "schema": "envctl.export/1",
            "format": self.format,
            "platform": self.platform,
            "packages": self.packages,
            "path": str(self.path) if self.path else None,
        }


def export_lock(
    lock_path: Path,
    fmt: Format,
    *,
    platform: str | None = None,
    output: Path | None = None,
    force: bool = False,
) -> ExportResult:
    """Render the lock at ``lock_path`` for one platform; atomically write ``output`` if given
    (an owned output: a file that is not an envctl export is replaced only with ``force``)."""
    from envctl.adapters.lockfile import read_lock
    from envctl.adapters.outputs import EXPORT, check_file_target, write_owned_file

    if output is not None:
        check_file_target(output, EXPORT, force=force)
    lock = read_lock(lock_path)
    platform = _platform(lock, platform, lock_path)
    entries = lock.for_platform(platform)
    if fmt == "requirements":
        text, count = render_requirements(entries, platform)
    elif fmt == "pylock":
        text, count = render_pylock(entries, platform, lock)
    elif fmt == "explicit":
        text, count = render_explicit(entries, platform)
    else:  # pragma: no cover - click restricts the choice
        raise InputError(f"--format {fmt}: unknown format", hint=f"choose from {', '.join(FORMATS)}")
    if output is not None:
        write_owned_file(output, text, EXPORT, force=force)
    return ExportResult(fmt, platform, text, count, output)


def _platform(lock: LockData, platform: str | None, path: Path) -> str:
    if platform is None:
        if len(lock.platforms) == 1:
            return lock.platforms[0]
        raise InputError(
            f"{path} covers {', '.join(lock.platforms)}: choose one with --platform",
            hint="e.g. --platform linux-64",
        )
    if platform not in lock.platforms:
        raise InputError(
            f"--platform {platform}: {path} covers only {', '.join(lock.platforms)}",
            hint="pick one of those",
        )
    return platform


def render_requirements(entries: Sequence[LockEntry], platform: str) -> tuple[str, int]:
    """requirements.txt: ``name @ url --hash=sha256:...`` for every pip entry."""
    pip = sorted((e for e in entries if e.manager == "pip"), key=lambda e: e.name)
    lines = [
        f"# envctl export --format requirements --platform {platform}",
        "# install with: pip install --no-deps --require-hashes -r FILE",
    ]
    conda = sum(1 for e in entries if e.manager == "conda")
    if conda:
        lines.append(f"# {conda} conda packages are not part of this file (use --format explicit)")
    for entry in pip:
        if _vcs(entry.url):
            # conda-lock records a git commit where the hash goes; pip checks no hash of a
            # checkout, so --require-hashes refuses this line: say so rather than fake a hash
            lines.append(
                f"# {entry.name}: a git checkout, pinned by its commit (pip --require-hashes refuses it)"
            )
            lines.append(f"{entry.name} @ {entry.url}")
            continue
        if not entry.sha256:
            raise LockError(
                f"{entry.name} {entry.version} has no sha256 in the lock",
                hint="re-create the lock with envctl lock",
            )
        # the reader checked both; a line of requirements.txt is no place to trust a caller
        url = valid_url(entry.url, f"{entry.name} {entry.version}", LockError, PIP_URL_SCHEMES)
        lines.append(f"{entry.name} @ {url} \\")
        lines.append(f"    --hash=sha256:{valid_sha256(entry.sha256, entry.name, LockError)}")
    return "\n".join(lines) + "\n", len(pip)


def render_explicit(entries: Sequence[LockEntry], platform: str) -> tuple[str, int]:
    """conda explicit file: ``@EXPLICIT`` then ``url#md5`` (``#sha256:`` when md5 is missing)."""
    conda = [e for e in entries if e.manager == "conda"]
    lines = [
        f"# envctl export --format explicit --platform {platform}",
        f"# platform: {platform}",
        "@EXPLICIT",
    ]
    for entry in conda:
        checksum = entry.md5 or (f"sha256:{entry.sha256}" if entry.sha256 else None)
        if checksum is None:
            raise LockError(
                f"{entry.name} {entry.version} has no hash in the lock",
                hint="re-create the lock with envctl lock",
            )
        lines.append(f"{valid_url(entry.url, entry.name, LockError)}#{checksum}")
    lines += [
        f"# pip {e.name} @ {valid_url(e.url, e.name, LockError, PIP_URL_SCHEMES)}#sha256={e.sha256}"
        for e in entries
        if e.manager == "pip"
    ]
    return "\n".join(lines) + "\n", len(conda)


def render_pylock(entries: Sequence[LockEntry], platform: str, lock: LockData) -> tuple[str, int]:
    """PEP 751 pylock.toml for the pip entries, validated by packaging.pylock before rendering."""
    from packaging.markers import Marker
    from packaging.pylock import (
        Package,
        PackageArchive,
        PackageSdist,
        PackageVcs,
        PackageWheel,
        Pylock,
        PylockValidationError,
    )
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    machine = PLATFORMS.get(platform, ("", ""))[0]
    pip = sorted((e for e in entries if e.manager == "pip"), key=lambda e: e.name)
    names = {e.name for e in pip}
    packages = []
    for entry in pip:
        hashes = {"sha256": entry.sha256} if entry.sha256 else {}
        wheel = sdist = archive = vcs = None
        if _vcs(entry.url):  # git+https://host/repo.git@COMMIT
            url, _, commit = entry.url.removeprefix("git+").rpartition("@")
            vcs = PackageVcs(type="git", url=url, commit_id=commit or str(entry.sha256))
        elif entry.filename.endswith(".whl"):
            wheel = [PackageWheel(name=entry.filename, url=entry.url, hashes=hashes)]
        elif _is_sdist_name(entry.filename):
            sdist = PackageSdist(name=entry.filename, url=entry.url, hashes=hashes)
        else:  # a direct URL to a source archive (a GitHub tag's v2.0.tar.gz): PEP 751's archive
            archive = PackageArchive(url=entry.url, hashes=hashes)
        deps = [{"name": name} for name, _ in entry.dependencies if name in names]
        packages.append(
            Package(
                name=canonicalize_name(entry.name),
                version=Version(entry.version),
                wheels=wheel,
                sdist=sdist,
                archive=archive,
                vcs=vcs,
                dependencies=deps or None,
            )
        )
    conda_python = next((e for e in entries if e.manager == "conda" and e.name == "python"), None)
    python = str(lock.solution.get("python") or "")
    if conda_python is not None:  # the interpreter the wheels were resolved for
        python = ".".join(conda_python.version.split(".")[:2])
    pylock = Pylock(
        lock_version=Version("1.0"),
        created_by="envctl",
        environments=[Marker(f"sys_platform == 'linux' and platform_machine == '{machine}'")]
        if machine
        else None,
        requires_python=SpecifierSet(f"=={python}.*") if python else None,
        packages=packages,
        tool={"envctl": {"platform": platform, "content-hash": lock.content_hash}},
    )
    try:
        pylock.validate()
        document = pylock.to_dict()
        Pylock.from_dict(document)  # what we write must read back
    except PylockValidationError as exc:
        raise LockError(f"cannot express the lock as pylock.toml: {exc}") from exc
    header = f"# envctl export --format pylock --platform {platform}\n"
    return header + toml_out.dumps(document), len(packages)


def _is_sdist_name(filename: str) -> bool:
    """Whether ``filename`` is a standard sdist name (``name-version.tar.gz``)."""
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

    try:
        parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return False
    return True


def _vcs(url: str) -> bool:
    """Whether ``url`` names a git checkout (``git+https://...@commit``), not a file."""
    return url.startswith("git+")
