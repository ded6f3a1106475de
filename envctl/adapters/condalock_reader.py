"""Read a conda-lock.yml (version 1) into a LockedEnv, through conda-lock's own parser."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from envctl.core.layers import normalise
from envctl.core.locked import LockedEnv, LockedFile
from envctl.errors import LockError

_CP_TAG = re.compile(r"-cp3(\d+)-")


def _epoch(custom: dict[str, str]) -> int:
    # The lock's exclude-newer time is the newest moment any file in it can come from, so it is
    # a fair, machine-independent "build time". SOURCE_DATE_EPOCH is the fallback convention.
    raw = (custom.get("envctl_exclude_newer") or custom.get("envctl.exclude_newer") or "").strip()
    if raw:
        try:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return max(0, int(when.timestamp()))
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(env) if env.isdigit() else 0


def _python(custom: dict[str, str], solution_python: object, files: list[LockedFile]) -> str:
    if solution_python:
        return ".".join(str(solution_python).split(".")[:2])
    explicit = custom.get("envctl_python") or custom.get("envctl.python")
    if explicit:
        return ".".join(explicit.split(".")[:2])
    for item in files:
        if item.manager == "conda" and item.name == "python":
            return ".".join(item.version.split(".")[:2])
    minors = {m.group(1) for f in files if (m := _CP_TAG.search(f.filename))}
    if len(minors) == 1:
        return f"3.{minors.pop()}"
    return ""


def read_locked_env(path: Path, platform: str) -> LockedEnv:
    """The files of ``platform`` in the lock at ``path``, with envctl's metadata.

    Raises LockError naming the file when it is missing, malformed or lacks the platform.
    """
    from conda_lock.lockfile import parse_conda_lock_file  # ~0.5 s: only when building

    if not path.is_file():
        raise LockError(f"{path}: no such lockfile", hint="run `envctl lock` first")
    try:
        lock = parse_conda_lock_file(path)
    except Exception as exc:  # pydantic / yaml errors: the library has no root exception
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LockError(f"{path}: not a conda-lock v1 lockfile: {first}") from exc
    custom = {str(k): str(v) for k, v in (lock.metadata.custom_metadata or {}).items()}
    files: list[LockedFile] = []
    for package in lock.package:
        if package.platform != platform:
            continue
        sha256 = package.hash.sha256
        if not sha256:
            raise LockError(
                f"{path}: package {package.name} {package.version} has no sha256",
                hint="every file in a lock must carry a sha256; re-lock",
            )
        filename = unquote(urlsplit(package.url).path.rsplit("/", 1)[-1])
        files.append(
            LockedFile(
                name=normalise(package.name) if package.manager == "pip" else package.name,
                version=package.version,
                manager=package.manager,
                url=package.url,
                sha256=sha256.lower(),
                filename=filename,
            )
        )
    if not files:
        platforms = ", ".join(lock.metadata.platforms) or "none"
        raise LockError(
            f"{path}: no packages for platform {platform}",
            hint=f"the lock covers: {platforms}",
        )
    env = LockedEnv(
        path=str(path),
        platform=platform,
        files=tuple(sorted(files, key=lambda f: (f.name, f.manager, f.filename))),
        content_hash=custom.get("envctl_content_hash")
        or custom.get("envctl.content_hash")
        or lock.metadata.content_hash.get(platform, ""),
        python="",
        epoch=_epoch(custom),
        custom=custom,
    )
    python = _python(custom, env.solution.get("python"), files)
    if not python:
        raise LockError(
            f"{path}: cannot tell which Python the lock is for",
            hint="the lock needs envctl.solution (python) or cpXY-tagged wheels",
        )
    return dataclasses.replace(env, python=python)
