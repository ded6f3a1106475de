"""Where envctl finds the data it ships: the installed package first, else the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.adapters import matrix_files, package_data
from envctl.errors import MatrixError

REPO = Path(__file__).resolve().parents[3]


def test_a_checkout_reads_the_top_level_folders() -> None:
    for name in package_data.FOLDERS:
        assert package_data.data_dir(name) == REPO / name


def test_the_copy_inside_the_package_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "_data" / "images" / "busybox").mkdir(parents=True)
    monkeypatch.setattr(package_data.resources, "files", lambda package: tmp_path)
    assert package_data.data_dir("images") == tmp_path / "_data" / "images"
    # a folder the package lacks falls back to the checkout's
    assert package_data.data_dir("profiles") == REPO / "profiles"


def test_an_install_without_data_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_data.resources, "files", lambda package: tmp_path)
    monkeypatch.setattr(package_data, "__file__", str(tmp_path / "site" / "envctl" / "adapters" / "x.py"))
    monkeypatch.delenv("ENVCTL_MATRIX", raising=False)
    assert package_data.data_dir("compat_matrix") is None
    with pytest.raises(MatrixError, match="ships no compat_matrix"):
        matrix_files.default_matrix_dir()


def test_envctl_matrix_overrides_the_shipped_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_MATRIX", str(tmp_path))
    assert matrix_files.default_matrix_dir() == tmp_path


def test_only_the_shipped_folders_are_asked_for() -> None:
    with pytest.raises(ValueError):
        package_data.data_dir("tests")
