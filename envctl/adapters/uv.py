"""uv at the edge: `uv pip compile` as a subprocess, its output parsed into pinned wheels.

One resolution runs uv twice on the same inputs: ``--format pylock.toml`` gives the exact file
(URL + sha256) chosen for the target, then the requirements.txt format, offline from uv's cache,
gives the dependency edges (``# via``) and the index each package came from (``# from``). Both
share the exclude-newer cutoff, so they resolve the same closure; a disagreement is an error.
Index pins become explicit indexes with ``tool.uv.sources`` in a throw-away pyproject.toml, so a
pinned package can only come from its own index and nothing else can come from there.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from envctl.core import toml_out
from envctl.core.progress import NullProgress, Progress
from envctl.core.resolvers import PinnedWheel, PipRequest
from envctl.errors import LockError, ResolveError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ROOT_PROJECT = "envctl-lock-root"
#: UV_* variables passed through (cache and transport). Every other UV_* (UV_INDEX_URL,
#: UV_EXCLUDE_NEWER, UV_TORCH_BACKEND, ...) would change what uv resolves behind envctl's back.
_KEEP_UV_ENV = {
    "UV_CACHE_DIR",
    "UV_NO_CACHE",
    "UV_HTTP_TIMEOUT",
    "UV_HTTP_RETRIES",
    "UV_NATIVE_TLS",
    "UV_SYSTEM_CERTS",
}


_FIND_LOCK = threading.Lock()
#: at most this many lines of uv's report become progress notes (one resolution)
_NOTE_LINES = 20


@functools.lru_cache(maxsize=1)
def _find_uv_cached() -> str:
    try:
        from uv import find_uv_bin
    except ImportError as exc:  # pragma: no cover - uv is a hard dependency
        raise LockError("the uv package is not installed", hint="pip install uv") from exc
    try:
        return str(find_uv_bin())
    except FileNotFoundError as exc:  # pragma: no cover
        raise LockError("the uv binary is missing from the uv package", hint="reinstall uv") from exc


def find_uv() -> str:
    """Path of the uv binary shipped by the `uv` PyPI package."""
    # find_uv_bin reads sysconfig, whose lazy set-up races when platforms resolve in threads.
    with _FIND_LOCK:
        return _find_uv_cached()


class UvResolver:
    """The PyPI side of a lock, resolved by uv (a ``core.resolvers.PipResolver``)."""

    def __init__(self, timeout: float = 900.0, progress: Progress | None = None) -> None:
        # find_uv reads sysconfig, whose lazy set-up is not thread-safe: do it here, before the
        # lock's threads start, rather than in the first of them
        find_uv()
        self.timeout = timeout
        self.progress = progress or NullProgress()

    def resolve(self, request: PipRequest) -> tuple[PinnedWheel, ...]:
        """Every pinned file of ``request``'s closure, sorted by name."""
        return compile_requirements(request, timeout=self.timeout, progress=self.progress)


def compile_requirements(
    request: PipRequest, *, timeout: float = 900.0, progress: Progress | None = None
) -> tuple[PinnedWheel, ...]:
    """Resolve ``request`` with uv and return every pinned file, sorted by name.

    uv's own report ("Resolved 41 packages in 2.1s", download lines) goes to ``progress`` as notes.
    """
    uv = find_uv()
    report = progress or NullProgress()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k in _KEEP_UV_ENV}
    with tempfile.TemporaryDirectory(prefix="envctl-uv-") as tmp:
        work = Path(tmp)
        (work / "pyproject.toml").write_text(_pyproject(request), encoding="utf-8")
        base = [uv, "pip", "compile", "pyproject.toml", *_options(request)]
        if request.constraints:
            (work / "constraints.txt").write_text("\n".join(request.constraints) + "\n", encoding="utf-8")
            base += ["--constraint", "constraints.txt"]
        _run_uv([*base, "--format", "pylock.toml", "-o", "pylock.toml"], work, env, request, timeout, report)
        # Same inputs, same cutoff: the second pass finds everything in uv's cache (a few ms).
        # Without a cache (UV_NO_CACHE) it must go online again.
        txt = [*base, "--emit-index-annotation", "--no-header", "-o", "requirements.txt"]
        if request.offline:  # already --offline
            _run_uv(txt, work, env, request, timeout)
        else:
            try:
                _run_uv([*txt, "--offline"], work, env, request, timeout)
            except ResolveError:
                _run_uv(txt, work, env, request, timeout)
        return _merge(
            (work / "pylock.toml").read_text(encoding="utf-8"),
            (work / "requirements.txt").read_text(encoding="utf-8"),
            request,
        )


def _run_uv(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    request: PipRequest,
    timeout: float,
    progress: Progress | None = None,
) -> None:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise ResolveError(f"uv took longer than {timeout:.0f}s to resolve {request.label}") from exc
    except OSError as exc:
        raise LockError(f"cannot run uv ({argv[0]}): {exc}") from exc
    if proc.returncode != 0:
        raise uv_error(proc.stderr.decode(errors="replace"), request)
    if progress is not None:
        for line in proc.stderr.decode(errors="replace").splitlines()[:_NOTE_LINES]:
            if line.strip():
                progress.note(f"{request.label or 'pip'}: uv: {line.strip()}")


def _pyproject(request: PipRequest) -> str:
    document: dict[str, Any] = {
        "project": {"name": ROOT_PROJECT, "version": "0", "dependencies": list(request.requirements)}
    }
    if request.pins and not request.offline:
        document["tool"] = {
            "uv": {
                "sources": {pin.package: {"index": f"envctl-pin-{i}"} for i, pin in enumerate(request.pins)},
                "index": [
                    {"name": f"envctl-pin-{i}", "url": pin.url, "explicit": True}
                    for i, pin in enumerate(request.pins)
                ],
            }
        }
    return toml_out.dumps(document)


def _options(request: PipRequest) -> list[str]:
    argv = [
        "--no-config",
        "--no-python-downloads",
        # Resolution targets --python-version; naming an interpreter spares uv a PATH search
        # (slow behind pyenv shims). It is only used to build sdists.
        "--python", sys.executable,
        # not --quiet: uv's one-line report ("Resolved 41 packages in 2.1s") is a progress note
        "--python-version", request.python_version,
        "--python-platform", request.python_platform,
        "--generate-hashes",
    ]  # fmt: skip
    if request.offline:
        argv += ["--offline", "--no-index", "--no-sources"]
    else:
        if request.exclude_newer:
            argv += ["--exclude-newer", request.exclude_newer]
        for package, when in request.exclude_newer_packages:
            argv += ["--exclude-newer-package", f"{package}={when}"]
        # Framework indexes are static pages without upload dates; an exact pin makes them
        # reproducible anyway, so the cutoff must not hide them.
        for pin in request.pins:
            argv += ["--exclude-newer-package", f"{pin.package}=false"]
        if request.index_url:
            argv += ["--index-url", request.index_url]
    for link in request.find_links:
        argv += ["--find-links", link]
    return argv


_VIA = re.compile(r"^\s+#\s+via\s*(.*)$")
_VIA_MORE = re.compile(r"^\s+#\s{3,}(\S.*)$")
_FROM = re.compile(r"^\s+#\s+from\s+(\S+)")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")


def parse_requirements(text: str) -> dict[str, tuple[list[str], str | None]]:
    """requirements.txt from uv -> {name: (parents, index)} using its ``via``/``from`` comments."""
    result: dict[str, tuple[list[str], str | None]] = {}
    current: str | None = None
    for line in text.splitlines():
        if pin := _PIN.match(line):
            current = _normalize(pin.group(1))
            result[current] = ([], None)
        elif current is None:
            continue
        elif m := _FROM.match(line):
            result[current] = (result[current][0], m.group(1))
        elif m := _VIA.match(line):
            if m.group(1):  # "# via torch" on one line; "# via" alone starts a list
                result[current][0].append(m.group(1).split()[0])
        elif m := _VIA_MORE.match(line):
            result[current][0].append(m.group(1).split()[0])
    return result


def _merge(pylock_text: str, requirements_text: str, request: PipRequest) -> tuple[PinnedWheel, ...]:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        pylock = Pylock.from_dict(tomllib.loads(pylock_text))
    except (tomllib.TOMLDecodeError, PylockValidationError) as exc:
        raise LockError(
            f"uv wrote a pylock.toml envctl cannot read: {exc}",
            hint="report this with the uv version",
        ) from exc
    edges = parse_requirements(requirements_text)
    children: dict[str, list[str]] = {}
    for name, (parents, _) in edges.items():
        for parent in parents:
            children.setdefault(_normalize(parent), []).append(name)
    pinned = []
    for package in pylock.packages:
        name = _normalize(package.name)
        version = str(package.version)
        if name not in edges:
            raise LockError(
                f"uv gave two different answers for {request.label}: {name} {version}",
                hint="run the lock again",
            )
        wheel = next(iter(package.wheels or ()), None)
        artifact = wheel if wheel is not None else package.sdist
        if artifact is None:
            raise LockError(f"{name} {version} has no wheel or sdist file for {request.label}")
        url = artifact.url or (Path(artifact.path).absolute().as_uri() if artifact.path else None)
        if url is None:
            raise LockError(f"uv gave no URL for {name} {version}")
        deps = tuple(sorted(set(children.get(name, ()))))
        pinned.append(PinnedWheel(name, version, url, artifact.hashes.get("sha256"), deps, edges[name][1]))
    if len(pinned) != len(edges):
        raise LockError(f"uv gave two different answers for {request.label}", hint="run the lock again")
    return tuple(sorted(pinned, key=lambda p: p.name))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_NOT_FOUND = re.compile(r"Because (\S+) was not found in the (package registry|provided package locations)")
_NO_VERSION = re.compile(r"there is no version of (\S+?)(\{[^}]*\})?(==|>=|<=|~=|!=|<|>)(\S+?)[ ,]")
_FETCH = re.compile(r"Failed to fetch: `?([^`\s]+)`?")


def uv_error(stderr: str, request: PipRequest) -> ResolveError:
    """Turn uv's stderr into one LockError line that names the package or index, with a hint."""
    where = f" for {request.label}" if request.label else ""
    text = " ".join(stderr.split())
    if m := _NOT_FOUND.search(text):
        source = "the package index" if m.group(2) == "package registry" else "the --find-links folders"
        return ResolveError(
            f"unknown package {m.group(1)}{where}: not found in {source}",
            hint="check the name and the indexes in the profile",
        )
    if m := _FETCH.search(text):
        cause = "connection refused" if "refused" in text.lower() else "request failed"
        return ResolveError(
            f"cannot reach index {m.group(1)}{where}: {cause}",
            hint="check the index URL, or lock with --offline --find-links DIR",
        )
    if m := _NO_VERSION.search(text + " "):
        spec = f"{m.group(1)}{m.group(3)}{m.group(4)}"
        return ResolveError(
            f"unsatisfiable{where}: no version of {spec} fits",
            hint=_hint(text, "relax the pin or check the index and platform"),
        )
    causes = [
        line.strip()[len("cause:") :].strip()
        for line in stderr.splitlines()
        if line.strip().startswith("cause:")
    ]
    first = next(
        (line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")),
        text[:200],
    )
    detail = " ".join((causes[0] if causes else first).split())
    return ResolveError(
        f"uv could not resolve{where}: {detail[:400]}",
        hint=_hint(text, "run uv pip compile by hand to see the full report"),
    )


def _hint(text: str, default: str) -> str:
    m = re.search(r"hint: (.*?)(?: hint:|$)", text)
    return m.group(1)[:300] if m else default
