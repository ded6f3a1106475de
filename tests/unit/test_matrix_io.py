"""The matrix loader rejects malformed data with file, key path and expectation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envctl.adapters.matrix_files import load_matrix
from envctl.errors import MatrixError

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "matrix_small"


@pytest.fixture
def matrix_dir(tmp_path: Path) -> Path:
    target = tmp_path / "m"
    shutil.copytree(SMALL, target)
    return target


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text()
    assert old in text, f"fixture changed: {old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def test_small_matrix_loads(matrix_dir):
    m = load_matrix(matrix_dir)
    assert m.find_gpu("nvidia h100 80gb hbm3").name == "H100"
    assert len(m.version) == 64


@pytest.mark.parametrize(
    "name, old, new, fragment",
    [
        (
            "cuda.toml",
            'min_driver = "520.61.05"',
            'min_driver = "new"',
            "cuda.toml: toolkit[0].min_driver: expected a version",
        ),
        (
            "gpus.toml",
            'source = "GPUS"',
            'source = "BLOG"',
            "gpus.toml: gpu[0].source: unknown source key 'BLOG'",
        ),
        ("gpus.toml", 'cc = "9.0"', 'cc = "9.9"', "cc 9.9 is not in compute_capability.toml"),
        (
            "torch.toml",
            'index = "pytorch-cu118"',
            'index = "nightly"',
            "build[1].index: unknown index 'nightly'",
        ),
        (
            "torch.toml",
            'platforms = ["linux-aarch64"]',
            'platforms = ["win-64"]',
            "unknown platform 'win-64'",
        ),
        ("torch.toml", 'cudnn = "==9.1.0.70"', 'cudnn = "==9.1.0.99"', "matches no cuDNN release"),
        ("torch.toml", 'python = ">=3.9,<3.14"', "python = 3", "build[0].python: expected a string"),
        ("jax.toml", 'min_cc = "5.2"', 'min_cc = "5.2"\ncolour = "red"', "build[0].colour: unknown key"),
        ("cuda.toml", "[[major]]\nmajor = 13", "[[major]]\nmajor = 14", "toolkit 13.0: no [[major]] row"),
        ("tensorflow.toml", 'variant = "cpu"', 'variant = "cpu"\ncuda = "==12.5"', "a cpu build has no cuda"),
        ("blas.toml", "[[blas]]", "[[blas]\n", "malformed TOML"),
    ],
)
def test_malformed_matrix(matrix_dir, name, old, new, fragment):
    edit(matrix_dir, name, old, new)
    with pytest.raises(MatrixError) as err:
        load_matrix(matrix_dir)
    assert fragment in err.value.message
    assert name in err.value.message


def test_missing_file(matrix_dir):
    (matrix_dir / "jax.toml").unlink()
    with pytest.raises(MatrixError, match=r"jax\.toml: no such matrix file"):
        load_matrix(matrix_dir)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = " + "[" * 100_000, "nested too deeply"),  # RecursionError in the TOML parser (issue 9, 10)
        ("x = 1" + "0" * 5000, "4300 digits"),
        ("".join(f"[{'a.' * 120}a]\n"), "nested deeper than 100 levels"),
    ],
)
def test_a_hostile_matrix_file_is_one_error(matrix_dir, text, fragment):
    (matrix_dir / "blas.toml").write_text(text)
    with pytest.raises(MatrixError) as err:
        load_matrix(matrix_dir)
    assert fragment in err.value.message
    assert "blas.toml" in err.value.message
