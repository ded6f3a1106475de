"""Read compat_matrix/ into a ``Matrix``: find the folder, read its files, cache the result.

What the files must say (schema and consistency rules) is ``envctl.core.matrix_schema``'s job.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
from pathlib import Path

from packaging.version import Version

from envctl.adapters.files import read_toml, write_atomic
from envctl.adapters.package_data import data_dir
from envctl.core.matrix import Matrix
from envctl.core.matrix_schema import MATRIX_FILES, parse_matrix
from envctl.errors import MatrixError


def default_matrix_dir() -> Path:
    """$ENVCTL_MATRIX, else the compat_matrix/ envctl ships (in the package, or the checkout's)."""
    env = os.environ.get("ENVCTL_MATRIX")
    if env:
        return Path(env)
    shipped = data_dir("compat_matrix")
    if shipped is None:
        raise MatrixError(
            "this envctl ships no compat_matrix/ directory",
            hint="reinstall envctl from a wheel or sdist, set ENVCTL_MATRIX or pass --matrix DIR",
        )
    return shipped


def matrix_hash(directory: Path) -> str:
    """sha256 over the names and bytes of the matrix files: the lock's matrix version."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.toml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_matrix(directory: Path | None = None) -> Matrix:
    """Load and validate every matrix file (or a cached copy of exactly these bytes).

    Parsing and validating ~3,000 TOML rows costs ~50 ms; the validated Matrix is cached under
    $XDG_CACHE_HOME/envctl keyed by the sha256 of the files and of the code that checks them, so
    a CLI call pays a few ms.
    Raises MatrixError naming file and key.
    """
    directory = directory or default_matrix_dir()
    if not directory.is_dir():
        raise MatrixError(f"{directory}: not a directory", hint="pass the compat_matrix/ folder")
    digest = matrix_hash(directory)
    cache = _cache_path(digest)
    try:
        with open(cache, "rb") as fh:
            cached = pickle.load(fh)
        if isinstance(cached, Matrix) and cached.version == digest:
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        pass  # no cache, or one from another envctl version: rebuild it
    matrix = _load_matrix(directory, digest)
    with contextlib.suppress(OSError):
        write_atomic(cache, pickle.dumps(matrix, protocol=pickle.HIGHEST_PROTOCOL))
    return matrix


def _cache_path(digest: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "envctl"
    return root / f"matrix-{digest[:32]}-{_checker_digest()[:16]}.pickle"


@functools.lru_cache(maxsize=1)
def _checker_digest() -> str:
    """sha256 of the code that validates and models a matrix: a cache written before a rule was
    added (or a model changed) must not vouch for files the new rule refuses."""
    from envctl import __version__
    from envctl.core import matrix, matrix_rules, matrix_schema, schema

    digest = hashlib.sha256(__version__.encode())
    for module in (matrix, matrix_rules, matrix_schema, schema):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def _load_matrix(directory: Path, digest: str) -> Matrix:
    files = {}
    for name in MATRIX_FILES:
        path = directory / f"{name}.toml"
        files[name] = (read_toml(path, "matrix file", MatrixError), str(path))
    return parse_matrix(files, digest)


def parse_driver(text: str) -> Version:
    """Parse an NVIDIA driver version ("550.54.15") for messages and CLI flags."""
    return Version(text)
