"""`envctl matrix refresh` against wheel metadata recorded from PyPI (tests/fixtures/matrix/index)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envctl.cli import main
from envctl.core.wheel_facts import IndexFile
from envctl.errors import MatrixError
from envctl.services.solve.index_reader import IndexReader, derive
from envctl.services.solve.refresh import refresh

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "matrix"
INDEX = FIXTURES / "index"
sys.path.insert(0, str(FIXTURES))
from mx_index import RecordedIndex  # noqa: E402


@pytest.fixture
def matrix_dir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "refresh", tmp_path / "m")
    return tmp_path / "m"


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count))


def test_recorded_rows_agree_with_the_index(matrix_dir: Path) -> None:
    report = refresh(matrix_dir, "torch", fetch=RecordedIndex())
    assert report.clean, report.diffs
    assert (report.checked_rows, report.skipped_rows) == (4, 1)  # the cu124-index row is skipped
    assert refresh(matrix_dir, "jax", fetch=RecordedIndex()).clean


def test_tensorflow_extras_and_package_override(matrix_dir: Path) -> None:
    # 2.13 takes CUDA from the system (no pins to compare); 2.14 pins it through [and-cuda];
    # the linux-64 CPU rows are the tensorflow-cpu project
    assert refresh(matrix_dir, "tensorflow", fetch=RecordedIndex()).clean
    path = matrix_dir / "tensorflow.toml"
    edit(path, 'cudnn = "==8.7.0.84"', 'cudnn = "==8.6.0.163"')
    text = path.read_text()
    cpu_row = text.index('package = "tensorflow-cpu"')
    start = text.rindex("[[build]]", 0, cpu_row)
    path.write_text(
        text[:start] + text[start:].replace('python = ">=3.8,<3.12"', 'python = ">=3.8,<3.13"', 1)
    )
    diffs = refresh(matrix_dir, "tensorflow", fetch=RecordedIndex()).diffs
    assert {(d.field, d.versions, d.committed, d.pypi) for d in diffs} == {
        ("cudnn", ("2.14.1",), "==8.6.0.163", "==8.7.0.84"),
        ("python", ("2.13.1",), ">=3.8,<3.13", ">=3.8,<3.12"),
    }


class AwsOnlyForCp37(RecordedIndex):
    """As if tensorflow-cpu-aws 2.13.1 had cp37 wheels only (what really happened to 2.11.1)."""

    def project_files(self, project: str) -> list[IndexFile]:
        files = super().project_files(project)
        if project != "tensorflow-cpu-aws":
            return files
        return [
            IndexFile(re.sub(r"-cp3\d+-cp3\d+-", "-cp37-cp37m-", f.filename), f.url)
            if "-2.13.1-" in f.filename
            else f
            for f in files
        ]


def test_a_release_whose_aarch64_companion_cannot_install_is_not_a_build(matrix_dir: Path) -> None:
    (diff,) = refresh(matrix_dir, "tensorflow", fetch=AwsOnlyForCp37()).diffs
    assert (diff.field, diff.platform, diff.versions) == ("platforms", "linux-aarch64", ("2.13.1",))
    path = matrix_dir / "tensorflow.toml"
    blocks = path.read_text().split("\n\n")
    path.write_text(
        "\n\n".join(b for b in blocks if not ('"2.13.1"' in b and 'platforms = ["linux-aarch64"]' in b))
    )
    assert refresh(matrix_dir, "tensorflow", fetch=AwsOnlyForCp37()).clean  # and no "(no row)" either


def test_a_changed_pin_is_reported_with_both_values(matrix_dir: Path) -> None:
    edit(matrix_dir / "torch.toml", 'cudnn = "==9.1.0.70"', 'cudnn = "==9.1.0.69"')
    (diff,) = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert (diff.row, diff.field, diff.platform) == (0, "cudnn", "linux-64")
    assert (diff.committed, diff.pypi, diff.versions) == ("==9.1.0.69", "==9.1.0.70", ("2.5.0", "2.5.1"))


def test_python_range_comes_from_the_cpython_tags(matrix_dir: Path) -> None:
    # torch 2.5 aarch64 has no cp313 wheel although Requires-Python says >=3.8
    edit(matrix_dir / "torch.toml", 'python = ">=3.9,<3.13"', 'python = ">=3.9,<3.14"')
    (diff,) = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert (diff.field, diff.platform, diff.pypi) == ("python", "linux-aarch64", ">=3.9,<3.13")


def test_glibc_is_compared_with_what_the_tag_claims(matrix_dir: Path) -> None:
    edit(matrix_dir / "torch.toml", 'tag_glibc = "2.5"\n', "")
    diffs = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert {(d.field, d.committed, d.pypi) for d in diffs} == {("glibc", "2.17", "2.5")}


def test_a_release_no_row_lists_is_reported(matrix_dir: Path) -> None:
    text = (matrix_dir / "torch.toml").read_text()
    blocks = text.split("[[build]]")
    kept = [b for b in blocks if '"2.6.0"' not in b]
    (matrix_dir / "torch.toml").write_text("[[build]]".join(kept))
    diffs = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert {(d.field, d.platform, d.pypi, d.row) for d in diffs} == {
        ("versions", "linux-64", "2.6.0", None),
        ("versions", "linux-aarch64", "2.6.0", None),
    }


def test_a_platform_without_a_wheel_is_reported(matrix_dir: Path) -> None:
    # jax-cuda12-plugin 0.4.38 was published for x86_64 only
    edit(matrix_dir / "jax.toml", 'platforms = ["linux-64"]', 'platforms = ["linux-64", "linux-aarch64"]')
    (diff,) = refresh(matrix_dir, "jax", fetch=RecordedIndex()).diffs
    assert (diff.field, diff.committed, diff.pypi, diff.versions) == (
        "platforms", "linux-aarch64", None, ("0.4.38",),
    )  # fmt: skip


def test_a_cpu_row_whose_wheel_pins_cuda_is_reported(matrix_dir: Path) -> None:
    path = matrix_dir / "torch.toml"
    text = path.read_text()
    first, rest = text.split("[[build]]", 1)[0], text.split("[[build]]", 1)[1]
    row, tail = rest.split("\n\n", 1)
    row = "\n".join(
        line for line in row.splitlines() if not line.startswith(("cuda", "cudnn", "nccl", "cublas"))
    ).replace('variant = "cu124"', 'variant = "cpu"')
    path.write_text(first + "[[build]]" + row + "\n\n" + tail)
    fields = {d.field: d.pypi for d in refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs}
    assert fields == {"cuda": "==12.4", "cudnn": "==9.1.0.70", "nccl": "==2.21.5", "cublas": "==12.4.5.8"}


def test_jax_columns_come_from_its_binary_companions() -> None:
    reader = IndexReader(RecordedIndex())
    cuda = derive(reader, "jax", Version("0.5.0"), "linux-aarch64", ("cuda12",))
    assert cuda is not None
    assert (cuda.python, cuda.glibc) == (">=3.10,<3.14", "2.17")  # jaxlib's tags, not jax's py3
    # the plugin's nvidia-cuda-nvcc-cu12>=12.6.85 (jax-ml/jax plugin_setup.py from jax-v0.4.36)
    # decides the toolkit floor, not nvidia-cuda-runtime-cu12>=12.1.105
    assert cuda.pins == {
        "cuda": ">=12.6,<13", "cudnn": "<10.0,>=9.1", "nccl": ">=2.18.1", "cublas": ">=12.1.3.1",
    }  # fmt: skip
    assert cuda.runtime is None  # a range names no release
    assert derive(reader, "jax", Version("0.4.38"), "linux-aarch64", ("cuda12",)) is None


def test_a_jax_row_on_the_runtime_floor_is_a_difference(matrix_dir: Path) -> None:
    # the rows used to say >=12.1: the runtime's floor, which a [with-cuda] install never meets
    edit(matrix_dir / "jax.toml", 'cuda = ">=12.6,<13"', 'cuda = ">=12.1,<13"')
    (diff,) = refresh(matrix_dir, "jax", fetch=RecordedIndex()).diffs
    assert (diff.field, diff.committed, diff.pypi, diff.versions) == (
        "cuda",
        ">=12.1,<13",
        ">=12.6,<13",
        ("0.4.38",),
    )


def test_the_update_release_is_read_off_the_runtime_pin(matrix_dir: Path) -> None:
    # torch 2.5 pins nvidia-cuda-runtime-cu12==12.4.127: 12.4 Update 1 by cuda.toml's cudart column
    (matrix_dir / "cuda.toml").write_text(
        '[[update]]\nversion = "12.4.0"\nmin_driver = "550.54.14"\ncudart = "12.4.99"\nsource = "CUDA-RN"\n'
        '[[update]]\nversion = "12.4.1"\nmin_driver = "550.54.15"\ncudart = "12.4.127"\nsource = "CUDA-RN"\n'
    )
    diffs = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert {(d.field, d.committed, d.pypi) for d in diffs} == {("cuda_update", None, "12.4.1")}
    path = matrix_dir / "torch.toml"
    text = path.read_text()
    path.write_text(text.replace('cuda_libs = "pip"', 'cuda_update = "12.4.1"\ncuda_libs = "pip"'))
    assert refresh(matrix_dir, "torch", fetch=RecordedIndex()).clean
    path.write_text(text.replace('cuda_libs = "pip"', 'cuda_update = "12.4.0"\ncuda_libs = "pip"'))
    diffs = refresh(matrix_dir, "torch", fetch=RecordedIndex()).diffs
    assert {(d.field, d.committed, d.pypi) for d in diffs} == {("cuda_update", "12.4.0", "12.4.1")}
    assert {v for d in diffs for v in d.versions} == {"2.5.0", "2.5.1", "2.6.0"}


def test_tensorflow_214_python_is_capped_by_its_tensorrt_pin(matrix_dir: Path) -> None:
    # tensorflow[and-cuda]==2.14.1 pins tensorrt==8.5.3.1, whose wheels stop at cp310
    path = matrix_dir / "tensorflow.toml"
    edit(path, 'python = ">=3.9,<3.11"', 'python = ">=3.9,<3.12"')
    (diff,) = refresh(matrix_dir, "tensorflow", fetch=RecordedIndex()).diffs
    assert (diff.field, diff.committed, diff.pypi, diff.versions) == (
        "python", ">=3.9,<3.12", ">=3.9,<3.11", ("2.14.1",),
    )  # fmt: skip


def test_unknown_framework_is_bad_input(matrix_dir: Path) -> None:
    with pytest.raises(MatrixError, match="unknown framework 'mxnet'"):
        refresh(matrix_dir, "mxnet", fetch=RecordedIndex())


def test_archs_are_read_from_the_wheels_when_asked(matrix_dir: Path) -> None:
    assert refresh(matrix_dir, "torch", fetch=RecordedIndex(), archs=True).clean
    assert refresh(matrix_dir, "tensorflow", fetch=RecordedIndex(), archs=True).clean
    edit(matrix_dir / "torch.toml", '"8.6", "9.0"]', '"8.6", "8.9", "9.0"]')
    edit(matrix_dir / "tensorflow.toml", 'ptx = ["8.0"]', "ptx = []")
    assert refresh(matrix_dir, "torch", fetch=RecordedIndex()).clean  # archs are opt-in
    (torch_diff,) = refresh(matrix_dir, "torch", fetch=RecordedIndex(), archs=True).diffs
    assert (torch_diff.field, torch_diff.versions, torch_diff.pypi) == (
        "archs",
        ("2.5.0", "2.5.1"),
        "5.0 6.0 7.0 7.5 8.0 8.6 9.0",
    )
    (tf_diff,) = refresh(matrix_dir, "tensorflow", fetch=RecordedIndex(), archs=True).diffs
    assert (tf_diff.field, tf_diff.committed, tf_diff.pypi) == ("ptx", None, "8.0")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('versions = ["2.6.0"]', 'versions = ["two.six"]', r"build\[2\]\.versions: Invalid version"),
        (
            'platforms = ["linux-aarch64"]',
            'platforms = ["linux-ppc64le"]',
            "unknown platform 'linux-ppc64le'",
        ),
        ('package = "torch"', "", "expected `package` and \\[\\[build\\]\\] rows"),
    ],
)
def test_malformed_rows_are_bad_input(matrix_dir: Path, old: str, new: str, message: str) -> None:
    edit(matrix_dir / "torch.toml", old, new)
    with pytest.raises(MatrixError, match=message):
        refresh(matrix_dir, "torch", fetch=RecordedIndex())


def test_report_json_shape(matrix_dir: Path) -> None:
    edit(matrix_dir / "torch.toml", 'nccl = "==2.21.5"', 'nccl = "==2.20.5"')
    data = refresh(matrix_dir, "torch", fetch=RecordedIndex()).to_json()
    assert data["schema"] == "envctl.matrix-refresh/1" and data["clean"] is False
    assert set(data["diffs"][0]) == {
        "file", "row", "label", "field", "platform", "versions", "committed", "pypi",
    }  # fmt: skip


@pytest.fixture
def recorded_client(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Make the CLI's default PyPIClient the recorded index."""
    import envctl.adapters.pypi

    state = {"fail": False}
    monkeypatch.setattr(envctl.adapters.pypi, "PyPIClient", lambda *a, **k: RecordedIndex(fail=state["fail"]))
    return state


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    return int(exc.value.code or 0)


def test_cli_exit_codes(
    matrix_dir: Path, recorded_client: dict[str, bool], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["matrix", "refresh", "--framework", "torch", "--matrix", str(matrix_dir)]
    assert run_cli(args) == 0
    assert "no difference" in capsys.readouterr().out

    edit(matrix_dir / "torch.toml", 'cudnn = "==9.1.0.70"', 'cudnn = "==9.1.0.69"')
    assert run_cli([*args, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(d["field"], d["pypi"]) for d in data["diffs"]] == [("cudnn", "==9.1.0.70")]
    assert run_cli(args) == 1
    out = capsys.readouterr().out
    assert "cudnn" in out and "4 PyPI rows checked, 1 rows on other indexes" in out
    assert out.rstrip().endswith("1 difference")

    recorded_client["fail"] = True  # an unreachable index is a remote source failing: exit 1, as in lock
    assert run_cli([*args, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert error["schema"] == "envctl.error/1" and error["error_class"] == "TransportError"
    assert "cannot reach the index" in error["error"]
    assert run_cli(args) == 1
    assert "https://pypi.org/simple/torch/" in capsys.readouterr().err
