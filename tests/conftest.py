"""Shared test configuration. Integration areas keep their fixtures in their own folders."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def small_matrix():  # type: ignore[no-untyped-def]
    """A small hand-made matrix: solver semantics are tested against facts we control."""
    from envctl.adapters.matrix_files import load_matrix

    return load_matrix(FIXTURES / "matrix_small")


@pytest.fixture(scope="session")
def real_matrix():  # type: ignore[no-untyped-def]
    """The committed compat_matrix/: what users get."""
    from envctl.adapters.matrix_files import load_matrix

    return load_matrix(ROOT / "compat_matrix")


@pytest.fixture(autouse=True, scope="session")
def _private_ledger(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Tests record locks, builds and pushes in their own ledger, never the user's history."""
    import os

    old = os.environ.get("ENVCTL_STATE_DIR")
    os.environ["ENVCTL_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("ENVCTL_STATE_DIR", None)
    else:
        os.environ["ENVCTL_STATE_DIR"] = old
