"""What a build starts from: the lock's environment for a platform, the base to build on, the
image's fixed time, and every file of the environment, downloaded and verified.

``envctl build`` and ``envctl render`` both read their inputs here, so the two read a lock and
verify its files the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envctl.adapters.blob_cache import BlobCache
from envctl.core.lock import LockedEnv, LockEntry, locked_env
from envctl.core.names import decimal
from envctl.core.progress import Progress
from envctl.services.build.model import Verified

#: the base of a lock whose profile names no ``base_image`` (built by ``envctl base build``)
DEFAULT_BASE = "base:debian-bookworm-python"

#: the default base of each platform (``envctl base build`` makes them from images/)
DEFAULT_BASES = {"linux/amd64": DEFAULT_BASE, "linux/arm64": f"{DEFAULT_BASE}-arm64"}


def base_for(env: LockedEnv, option: str | None, platform: str = "linux/amd64") -> str:
    """The base to build on: ``--base``, else the profile's ``base_image``, else the platform's
    default (DEFAULT_BASES)."""
    return option or env.base_image or DEFAULT_BASES.get(platform, DEFAULT_BASE)


def rfc3339(epoch: int) -> str:
    """``epoch`` as an RFC 3339 UTC time (the image's ``created``)."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention), else 0.

    The fixed time of an image whose lock records no exclude-newer time (one conda-lock wrote).
    """
    value = decimal(os.environ.get("SOURCE_DATE_EPOCH", "").strip(), 12)
    return 0 if value is None else value


def read_environment(lock: Path, subdir: str) -> LockedEnv:
    """The platform ``subdir`` of the lock at ``lock``, through the one lock reader."""
    from envctl.adapters.lockfile import read_lock

    return locked_env(read_lock(lock), subdir, source=str(lock), fallback_epoch=source_date_epoch())


@dataclass(frozen=True)
class Fetched:
    """Every file of an environment, downloaded and verified."""

    env: LockedEnv  # every file with its sha256 (computed from the download where the lock had md5 only)
    files: dict[LockEntry, Path]  # entry of ``env`` -> its blob in the cache
    verified: Verified


def fetch_all(env: LockedEnv, cache: BlobCache, workers: int, progress: Progress | None = None) -> Fetched:
    """Every file of ``env`` from the cache, downloaded and verified first.

    By sha256; a file the lock pins by md5 alone (older conda-lock) is checked by md5 and then
    known by the sha256 of its bytes, so layers, SBOM and cache treat it like any other. Each
    download reports its bytes to ``progress`` (files already cached report nothing).
    """
    if progress is not None:
        from envctl.adapters.progress_io import CountingDownloader

        cache = BlobCache(cache.root, CountingDownloader(cache.downloader, progress))

    def one(entry: LockEntry) -> tuple[Path, str]:
        what = f"{entry.name} {entry.version}"
        if entry.sha256:
            return cache.fetch(entry.url, entry.sha256, what), entry.sha256
        assert entry.md5 is not None  # locked_env lets no file through without one of the two
        return cache.fetch_md5(entry.url, entry.md5, what)

    # Every file is verified before any layer is built: a bad hash stops the build early.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, env.files))
    md5_only = tuple(f"{f.name} {f.version}" for f in env.files if not f.sha256)
    complete = env.with_sha256({f: sha256 for f, (_, sha256) in zip(env.files, results, strict=True)})
    files = {f: path for f, (path, _) in zip(complete.files, results, strict=True)}
    return Fetched(complete, files, Verified(len(env.files) - len(md5_only), md5_only))
