"""The loader enforces the matrix's consistency rules on any directory, not only the committed one.

Each case copies the committed compat_matrix/, breaks it in exactly one way (through its parsed
TOML, so the case keeps working as the data grows) and expects ``load_matrix`` to refuse it with a
message naming the file, the key path and the rule. The committed matrix itself must load.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters import matrix_files
from envctl.adapters.matrix_files import load_matrix
from envctl.errors import MatrixError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "compat_matrix"
Data = dict[str, Any]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="module")
def data() -> Data:
    return {p.stem: tomllib.loads(p.read_text()) for p in sorted(MATRIX.glob("*.toml"))}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML ones
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def write_matrix(target: Path, broken: Data, data: Data) -> Path:
    """The committed files, with each file that ``broken`` changes rewritten (inline tables)."""
    shutil.copytree(MATRIX, target)
    for name, doc in broken.items():
        if doc != data[name]:
            lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items()]
            (target / f"{name}.toml").write_text("\n".join(lines) + "\n")
            assert tomllib.loads((target / f"{name}.toml").read_text()) == doc
    return target


def build_index(data: Data, fw: str, version: str, variant: str) -> int:
    rows = data[fw]["build"]
    return next(i for i, b in enumerate(rows) if version in b["versions"] and b["variant"] == variant)


def row(data: Data, fw: str, version: str, variant: str) -> dict[str, Any]:
    return dict(data[fw]["build"][build_index(data, fw, version, variant)])


def torch_cu124(data: Data) -> str:
    return f"torch.toml: build[{build_index(data, 'torch', '2.5.1', 'cu124')}]"


def torch_cu130(data: Data) -> str:
    return f"torch.toml: build[{build_index(data, 'torch', '2.14.0', 'cu130')}]"


def _set(fw: str, version: str, variant: str, **changes: Any) -> Callable[[Data], None]:
    def apply(d: Data) -> None:
        r = d[fw]["build"][build_index(d, fw, version, variant)]
        for key, value in changes.items():
            if value is None:
                r.pop(key, None)
            else:
                r[key] = value(r) if callable(value) else value

    return apply


def _append_toolkit(version: str, min_driver: str) -> Callable[[Data], None]:
    def apply(d: Data) -> None:
        d["cuda"]["toolkit"].append({"version": version, "min_driver": min_driver, "source": "CUDA-RN"})

    return apply


def _duplicate_torch_cu124(d: Data) -> None:
    d["torch"]["build"].append(copy.deepcopy(row(d, "torch", "2.5.1", "cu124")))


def newest_toolkit(d: Data) -> int:
    toolkits = d["cuda"]["toolkit"]
    return max(range(len(toolkits)), key=lambda i: [int(p) for p in toolkits[i]["version"].split(".")])


def _newest_toolkit_on_old_driver(d: Data) -> None:
    d["cuda"]["toolkit"][newest_toolkit(d)]["min_driver"] = "400.00"


def index_row(d: Data, fw: str, version: str, variant: str, index: str, platform: str = "linux-64") -> int:
    rows = d[fw]["build"]
    return next(
        i
        for i, b in enumerate(rows)
        if version in b["versions"]
        and b["variant"] == variant
        and b["index"] == index
        and platform in b["platforms"]
    )


def _set_index(fw: str, version: str, variant: str, index: str, **changes: Any) -> Callable[[Data], None]:
    def apply(d: Data) -> None:
        r = d[fw]["build"][index_row(d, fw, version, variant, index)]
        for key, value in changes.items():
            if value is None:
                r.pop(key, None)
            else:
                r[key] = value(r) if callable(value) else value

    return apply


def update_row(d: Data, version: str) -> int:
    return next(i for i, u in enumerate(d["cuda"]["update"]) if u["version"] == version)


def _set_update(release: str, **changes: Any) -> Callable[[Data], None]:
    def apply(d: Data) -> None:
        d["cuda"]["update"][update_row(d, release)].update(changes)

    return apply


def cudnn_row(d: Data, series: str) -> int:
    return next(i for i, c in enumerate(d["cudnn"]["cudnn"]) if c["series"] == series)


def cc_row(d: Data, cc: str) -> int:
    return next(i for i, c in enumerate(d["compute_capability"]["cc"]) if c["cc"] == cc)


def gpu_row(d: Data, name: str) -> int:
    return next(i for i, g in enumerate(d["gpus"]["gpu"]) if g["name"] == name)


# (rule, how to break it, where the message points, what it says; {torch_cu124} is that row's index)
CASES: list[tuple[str, Callable[[Data], None], Callable[[Data], str], str]] = [
    (
        "source key",
        lambda d: d["gpus"]["gpu"][0].update(source="NOWHERE:made up"),
        lambda d: "gpus.toml: gpu[0].source",
        "unknown source key 'NOWHERE'",
    ),
    (
        "inferred flag",
        lambda d: d["gpus"]["gpu"][0].update(inferred="yes"),
        lambda d: "gpus.toml: gpu[0].inferred",
        "expected true or false",
    ),
    (
        "cudnn supports cuda",  # 8.9 does not support CUDA 12.4
        _set("torch", "2.5.1", "cu124", cudnn="==8.9.2.26"),
        lambda d: torch_cu124(d) + ".cudnn",
        "no cuDNN release matching ==8.9.2.26 supports CUDA ==12.4",
    ),
    (
        "cudnn release exists",
        _set("torch", "2.5.1", "cu124", cudnn="==9.99.0.1"),
        lambda d: torch_cu124(d) + ".cudnn",
        "cudnn ==9.99.0.1 matches no cuDNN release in cudnn.toml",
    ),
    (
        "cudnn pinned",
        _set("torch", "2.5.1", "cu124", cudnn=None),
        lambda d: torch_cu124(d) + ".cudnn",
        "a CUDA build without a cudnn pin",
    ),
    (
        "arch compilable",  # CUDA 13.0 no longer compiles for Volta
        _set("torch", "2.14.0", "cu130", archs=lambda r: [*r["archs"], "7.0"]),
        lambda d: torch_cu130(d) + ".archs",
        "CUDA 13.0 cannot compile for 7.0",
    ),
    (
        "arch known",
        _set("torch", "2.5.1", "cu124", ptx=["4.2"]),
        lambda d: torch_cu124(d) + ".ptx",
        "arch 4.2 is not in compute_capability.toml",
    ),
    (
        "archs or min_cc",
        _set("torch", "2.5.1", "cu124", archs=None, ptx=None, min_cc=None),
        lambda d: torch_cu124(d) + ".archs",
        "neither archs nor min_cc",
    ),
    (
        "cuda toolkit exists",
        _set("torch", "2.5.1", "cu124", cuda="==10.5"),
        lambda d: torch_cu124(d) + ".cuda",
        "cuda ==10.5 matches no toolkit in cuda.toml",
    ),
    (
        "gpu alias unique",
        lambda d: d["gpus"]["gpu"][1]["aliases"].append("Tesla K80"),
        lambda d: "gpus.toml: gpu[1].aliases",
        "'tesla k80' names both K80 and K40",
    ),
    (
        "gpu cc known",
        lambda d: d["gpus"]["gpu"][0].update(cc="9.9"),
        lambda d: "gpus.toml: gpu[0].cc",
        "cc 9.9 is not in compute_capability.toml",
    ),
    (
        "toolkit major",
        _append_toolkit("14.0", "700.1"),
        lambda d: f"cuda.toml: toolkit[{len(d['cuda']['toolkit'])}].version",
        "toolkit 14.0: no [[major]] row",
    ),
    (
        "toolkit unique",
        lambda d: d["cuda"]["toolkit"].append(dict(d["cuda"]["toolkit"][0])),
        lambda d: f"cuda.toml: toolkit[{len(d['cuda']['toolkit'])}].version",
        "is listed twice",
    ),
    (
        "drivers ascend",
        _newest_toolkit_on_old_driver,
        lambda d: f"cuda.toml: toolkit[{newest_toolkit(d)}].min_driver",
        "needs driver 400.00, older than",
    ),
    (
        "cc range",
        lambda d: d["compute_capability"]["cc"][0].update(last_cuda="6.0"),
        lambda d: "compute_capability.toml: cc[0].last_cuda",
        "last_cuda 6.0 is before first_cuda",
    ),
    (
        "no overlap",
        _duplicate_torch_cu124,
        lambda d: f"torch.toml: build[{len(d['torch']['build'])}].versions",
        "on linux-64 is already in build[{torch_cu124}]",
    ),
    (
        "python admits",
        _set("torch", "2.5.1", "cu124", python=">=3.99"),
        lambda d: torch_cu124(d) + ".python",
        "python >=3.99 admits no version of python.toml",
    ),
    (
        "versions ascend",
        _set("torch", "2.5.1", "cu124", versions=lambda r: [*reversed(r["versions"]), "0.1"]),
        lambda d: torch_cu124(d) + ".versions",
        "versions must be non-empty, ascending and each listed once",
    ),
    (
        "versions once",
        _set("torch", "2.5.1", "cu124", versions=lambda r: [r["versions"][0], *r["versions"]]),
        lambda d: torch_cu124(d) + ".versions",
        "versions must be non-empty, ascending and each listed once",
    ),
    (
        "cpu has no cuda",
        _set("torch", "2.5.1", "cpu", cuda="==12.4"),
        lambda d: f"torch.toml: build[{build_index(d, 'torch', '2.5.1', 'cpu')}].cuda",
        "a cpu build has no cuda",
    ),
    (
        "index known",
        _set("torch", "2.5.1", "cu124", index="nightly"),
        lambda d: torch_cu124(d) + ".index",
        "unknown index 'nightly'",
    ),
    (
        "cudnn series",
        lambda d: d["cudnn"]["cudnn"][0]["versions"].append("1.2.3"),
        lambda d: "cudnn.toml: cudnn[0].versions",
        "release 1.2.3 does not belong to series",
    ),
    # cuDNN's own GPU support (CUDNN-SM: 9.10.2 lists 5.0-12.0, 9.17.0 lists 7.5-12.0)
    (
        "cudnn cc range present",
        lambda d: d["cudnn"]["cudnn"][cudnn_row(d, "9.17")].pop("max_cc"),
        lambda d: f"cudnn.toml: cudnn[{cudnn_row(d, '9.17')}].max_cc",
        "missing required key",
    ),
    (
        "cudnn cc known",
        lambda d: d["cudnn"]["cudnn"][cudnn_row(d, "9.17")].update(min_cc="7.1"),
        lambda d: f"cudnn.toml: cudnn[{cudnn_row(d, '9.17')}].min_cc",
        "min_cc 7.1 is not in compute_capability.toml",
    ),
    (
        "cudnn cc order",
        lambda d: d["cudnn"]["cudnn"][cudnn_row(d, "9.10")].update(max_cc="3.7"),
        lambda d: f"cudnn.toml: cudnn[{cudnn_row(d, '9.10')}].max_cc",
        "max_cc 3.7 is below min_cc 5.0",
    ),
    (
        "cudnn cc well-formed",
        lambda d: d["cudnn"]["cudnn"][cudnn_row(d, "9.10")].update(min_cc="sm_50"),
        lambda d: f"cudnn.toml: cudnn[{cudnn_row(d, '9.10')}].min_cc",
        "expected a version like 12.4",
    ),
    # per-GPU driver bounds
    (
        "gpu first driver past its last branch",
        lambda d: d["gpus"]["gpu"][gpu_row(d, "K80")].update(min_driver="535.54.03"),
        lambda d: f"gpus.toml: gpu[{gpu_row(d, 'K80')}].min_driver",
        "min_driver 535.54.03 is past branch R470, the last for CC 3.7",
    ),
    (
        "last branch drives some toolkit",
        lambda d: d["compute_capability"]["cc"][cc_row(d, "3.7")].update(last_driver_branch="440"),
        lambda d: f"compute_capability.toml: cc[{cc_row(d, '3.7')}].last_driver_branch",
        "no CUDA toolkit it can use runs on a driver of branch R440",
    ),
    (
        "last branch well-formed",
        lambda d: d["compute_capability"]["cc"][cc_row(d, "3.7")].update(last_driver_branch="R470"),
        lambda d: f"compute_capability.toml: cc[{cc_row(d, '3.7')}].last_driver_branch",
        'expected a driver branch like "470"',
    ),
    (  # str.isdigit() is true for "²": int() raised ValueError (issue 9, finding 10)
        "last branch in ASCII digits",
        lambda d: d["compute_capability"]["cc"][cc_row(d, "3.7")].update(last_driver_branch="47\u00b2"),
        lambda d: f"compute_capability.toml: cc[{cc_row(d, '3.7')}].last_driver_branch",
        'expected a driver branch like "470"',
    ),
    # toolkit update releases (CUDA-RN table 3)
    (
        "update of a known toolkit",
        lambda d: d["cuda"]["update"].append(
            {"version": "12.7.1", "min_driver": "565.57.01", "source": "CUDA-RN"}
        ),
        lambda d: f"cuda.toml: update[{len(d['cuda']['update'])}].version",
        "toolkit 12.7 is not a [[toolkit]] row",
    ),
    (
        "update GA floor",
        _set_update("12.8.0", min_driver="570.25"),
        lambda d: f"cuda.toml: update[{update_row(d, '12.8.0')}].min_driver",
        "needs driver 570.25, but CUDA 12.8 GA needs 570.26",
    ),
    (
        "updates ascend",
        _set_update("12.6.3", min_driver="560.35.02"),
        lambda d: f"cuda.toml: update[{update_row(d, '12.6.3')}].min_driver",
        "older than 560.35.03 of 12.6.2",
    ),
    (
        "update cudart of its toolkit",
        _set_update("12.8.1", cudart="12.9.79"),
        lambda d: f"cuda.toml: update[{update_row(d, '12.8.1')}].cudart",
        "cudart 12.9.79 is not a CUDA 12.8 runtime",
    ),
    (
        "update version form",
        _set_update("12.8.1", version="12.8"),
        lambda d: f"cuda.toml: update[{update_row(d, '12.8.1')}].version",
        "expected a toolkit release like 12.8.1",
    ),
    (
        "cuda_update known",
        _set("torch", "2.5.1", "cu124", cuda_update="12.4.7"),
        lambda d: torch_cu124(d) + ".cuda_update",
        "cuda_update 12.4.7 is not an [[update]] row",
    ),
    (
        "cuda_update inside the build's minor",
        _set("torch", "2.5.1", "cu124", cuda_update="12.8.1"),
        lambda d: torch_cu124(d) + ".cuda_update",
        'cuda_update 12.8.1 needs cuda = "==12.8"',
    ),
    (
        "cuda_update needs an exact cuda",
        _set("jax", "0.5.3", "cuda12", cuda_update="12.6.3"),
        lambda d: f"jax.toml: build[{build_index(d, 'jax', '0.5.3', 'cuda12')}].cuda_update",
        'cuda_update 12.6.3 needs cuda = "==12.6"',
    ),
    # every pin consistent
    (
        "one nccl per cuda major",
        _set_index("torch", "2.9.0", "cu126", "pytorch-cu126", nccl=None),
        lambda d: f"torch.toml: build[{index_row(d, 'torch', '2.9.0', 'cu126', 'pytorch-cu126')}].nccl",
        "nccl (none) for 2.9.0, but torch 2.9.0 cu128 (pypi) pins ==2.27.5",
    ),
    (
        "pypi and index twins agree",
        _set_index("torch", "2.8.0", "cu128", "pytorch-cu128", archs=lambda r: r["archs"][1:]),
        lambda d: f"torch.toml: build[{index_row(d, 'torch', '2.8.0', 'cu128', 'pytorch-cu128')}].archs",
        "differs from torch 2.8.0 cu128 (pypi)'s",
    ),
    (
        "bundled builds pin no wheels",
        _set_index("torch", "2.1.0", "cu118", "pytorch-cu118", nccl="==2.18.1"),
        lambda d: f"torch.toml: build[{index_row(d, 'torch', '2.1.0', 'cu118', 'pytorch-cu118')}].nccl",
        "a build with cuda_libs = 'bundled' pins no nccl wheel",
    ),
]


def test_committed_matrix_passes_every_rule(tmp_path: Path, data: Data) -> None:
    m = load_matrix(write_matrix(tmp_path / "m", copy.deepcopy(data), data))
    assert len(m.frameworks) == 3 and all(fw.builds for fw in m.frameworks)


@pytest.mark.parametrize(("rule", "how", "where", "what"), CASES, ids=[c[0] for c in CASES])
def test_loader_refuses_a_matrix_that_breaks_one_rule(
    tmp_path: Path,
    data: Data,
    rule: str,
    how: Callable[[Data], None],
    where: Callable[[Data], str],
    what: str,
) -> None:
    broken = copy.deepcopy(data)
    how(broken)
    directory = write_matrix(tmp_path / "m", broken, data)
    with pytest.raises(MatrixError) as err:
        load_matrix(directory)
    message = err.value.message
    assert message.startswith(str(directory)), message
    assert where(data) in message, message
    index = build_index(data, "torch", "2.5.1", "cu124")
    assert what.replace("{torch_cu124}", str(index)) in message, message


def test_a_refused_matrix_is_not_cached(tmp_path: Path, data: Data, _private_cache: Path) -> None:
    broken = copy.deepcopy(data)
    broken["gpus"]["gpu"][0]["cc"] = "9.9"
    directory = write_matrix(tmp_path / "m", broken, data)
    for _ in range(2):  # the second load is refused too: nothing vouches for these bytes
        with pytest.raises(MatrixError, match=r"cc 9\.9 is not in"):
            load_matrix(directory)
    assert not list(_private_cache.rglob("*.pickle"))


def test_validated_matrix_is_cached_by_content(
    tmp_path: Path, data: Data, monkeypatch: pytest.MonkeyPatch, _private_cache: Path
) -> None:
    directory = write_matrix(tmp_path / "m", copy.deepcopy(data), data)
    first = load_matrix(directory)
    assert len(list(_private_cache.rglob("*.pickle"))) == 1

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again although the files did not change")

    monkeypatch.setattr(matrix_files, "parse_matrix", no_parsing)
    again = load_matrix(directory)
    assert again == first and again.version == first.version

    # a cache written by other checking code (a rule added since) does not count
    monkeypatch.setattr(matrix_files, "_checker_digest", lambda: "0" * 64)
    with pytest.raises(AssertionError, match="parsed again"):
        load_matrix(directory)


def _envctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def broken_dir(tmp_path: Path, data: Data) -> Path:
    broken = copy.deepcopy(data)
    _set("torch", "2.5.1", "cu124", cudnn="==8.9.2.26")(broken)
    return write_matrix(tmp_path / "m", broken, data)


def test_matrix_validate_refuses_a_user_matrix(broken_dir: Path, data: Data) -> None:
    r = _envctl("matrix", "validate", "--matrix", str(broken_dir))
    assert r.returncode == 2, r.stderr
    assert f"{torch_cu124(data)}.cudnn" in " ".join(r.stderr.split())


def test_envctl_matrix_env_is_checked_by_solve(broken_dir: Path, data: Data, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        '[environment]\nname = "p"\n[frameworks]\ntorch = ">=2.4"\n[targets]\ngpus = ["H100"]\n'
    )
    r = _envctl("solve", str(profile), "--json", env={"ENVCTL_MATRIX": str(broken_dir)})
    assert r.returncode == 2, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and f"{torch_cu124(data)}.cudnn" in doc["error"]
