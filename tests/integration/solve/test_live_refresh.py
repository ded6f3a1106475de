"""`envctl matrix refresh` against the real PyPI: the committed torch rows match what PyPI serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.services.solve.refresh import refresh

pytestmark = [pytest.mark.integration, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[3]


def test_committed_torch_rows_match_real_pypi() -> None:
    report = refresh(ROOT / "compat_matrix", "torch")
    assert report.checked_rows > 0
    # a release newer than the data is news, not an error in the committed rows
    wrong = [d for d in report.diffs if d.row is not None]
    assert wrong == []
