"""Bad input ends in one clear error and leaves nothing half-written."""

from __future__ import annotations

from pathlib import Path

import bd_wheels
import pytest
from bd_cli import run_cli
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration


def _blobs(cache: Path) -> list[str]:
    folder = cache / "blobs" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_hash_mismatch_names_package_and_both_hashes(
    tmp_path: Path, bd_wheelhouse: list[Path], bd_base_layout: Path
) -> None:
    wrong = "0" * 64
    lock = bd_wheels.write_lock(tmp_path / "lock.yml", bd_wheelhouse, hashes={"numpy": wrong})
    numpy = next(w for w in bd_wheelhouse if w.name.startswith("numpy-"))
    real = __import__("hashlib").sha256(numpy.read_bytes()).hexdigest()
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    # an earlier output (envctl's own: anything else is refused before any work) survives a failed build
    good = bd_wheels.write_lock(tmp_path / "good.yml", bd_wheelhouse)
    code, _, err = run_cli(["build", str(good), "--base", f"oci:{bd_base_layout}", "-o", str(out)], cache)
    assert code == 0, err
    before = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    blobs_before, names_before = _blobs(cache), sorted(p.name for p in out.iterdir())
    code, _, err = run_cli(["build", str(lock), "--base", f"oci:{bd_base_layout}", "-o", str(out)], cache)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "numpy 1.26.4" in lines[0] and wrong in lines[0] and real in lines[0]
    assert {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == names_before  # no scratch left inside
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert wrong not in _blobs(cache) and _blobs(cache) == blobs_before
    assert not any(name.startswith(".incoming") for name in _blobs(cache))


def test_base_without_matching_python_fails_before_download(
    tmp_path: Path, bd_lock: Path, bd_busybox_layout: Path, bd_base_layout: Path
) -> None:
    cache = tmp_path / "cache"
    code, _, err = run_cli(
        ["build", str(bd_lock), "--base", f"oci:{bd_busybox_layout}", "-o", str(tmp_path / "o")],
        cache,
    )
    assert code == 2
    assert "base image has no Python, the lock needs Python 3.11" in err
    assert not (tmp_path / "o").exists()
    wheels = {hashlib_hex(p) for p in (bd_lock.parent / "wheelhouse").iterdir()}
    assert not wheels & set(_blobs(cache))  # nothing was downloaded

    lock312 = bd_wheels.write_lock(
        tmp_path / "py312.yml", list((bd_lock.parent / "wheelhouse").iterdir()), python="3.12"
    )
    code, _, err = run_cli(
        ["build", str(lock312), "--base", f"oci:{bd_base_layout}", "-o", str(tmp_path / "o")],
        cache,
    )
    assert code == 2
    assert "base image has 3.11, the lock needs Python 3.12" in err
    assert not (tmp_path / "o").exists()


def hashlib_hex(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("base", "message", "exit_code"),
    [
        ("oci:/nonexistent/bd-layout", "no such OCI layout directory", 2),
        ("docker-archive:/nonexistent/bd.tar", "no such file", 2),
        ("base:bd-never-built", "base:bd-never-built: not built", 2),
        # nothing listens there: the operation failed, the input may be fine
        ("127.0.0.1:1/bd/none:latest", "cannot reach the registry", 1),
    ],
)
def test_missing_base_is_a_clear_error(
    tmp_path: Path, bd_lock: Path, base: str, message: str, exit_code: int
) -> None:
    code, _, err = run_cli(
        ["build", str(bd_lock), "--base", base, "--insecure-registry", "-o", str(tmp_path / "o")],
        tmp_path / "cache",
    )
    assert code == exit_code
    assert message in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "o").exists()


def test_errors_are_json_under_json(tmp_path: Path, bd_lock: Path) -> None:
    import json

    code, out, _ = run_cli(
        ["build", str(bd_lock), "--base", "oci:/nonexistent/bd-layout", "--json"], tmp_path / "c"
    )
    assert code == 2
    data = json.loads(out)
    assert_envelope(data, code, "envctl.error/1")
    assert data["ok"] is False and data["exit_code"] == 2
    assert "no such OCI layout directory" in data["error"]
