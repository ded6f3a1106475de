"""Build's view of a fixture lock (written by envctl's writer), and real wheels installed into a
staging root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))

import bd_wheels

from envctl.adapters.wheel_install import install_wheel
from envctl.errors import BuildError, LockError
from envctl.services.build.inputs import read_environment


def test_reads_files_metadata_python_and_epoch(tmp_path: Path) -> None:
    wheels = bd_wheels.standard_wheels(tmp_path / "w", lib_mb=1)
    env = read_environment(bd_wheels.write_lock(tmp_path / "l.yml", wheels), "linux-64")
    assert [f.name for f in env.files] == ["numpy", "nvidia-cudnn-cu12", "six", "torch"]
    torch = env.files[-1]
    assert torch.filename == "torch-2.5.1+cu124-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert torch.url.startswith("file://") and len(torch.sha256) == 64
    assert env.python == "3.11" and env.cuda == "12.4" and env.min_driver == "550.54.14"
    assert env.epoch == 1717200000  # the lock's exclude-newer time
    assert env.env_prefix() == "/opt/envctl/envs/bdtest"
    assert env.frameworks == ("torch==2.5.1",)


def test_missing_platform_and_missing_file_are_lock_errors(tmp_path: Path) -> None:
    lock = bd_wheels.write_lock(tmp_path / "l.yml", [bd_wheels.make_wheel(tmp_path, "six", "1")])
    with pytest.raises(LockError, match="no packages for platform linux-aarch64"):
        read_environment(lock, "linux-aarch64")
    with pytest.raises(LockError, match="no such lockfile"):
        read_environment(tmp_path / "nope.yml", "linux-64")
    (tmp_path / "bad.yml").write_text("version: 1\npackage: 3\n")
    with pytest.raises(LockError, match="corrupt lockfile"):
        read_environment(tmp_path / "bad.yml", "linux-64")


def test_install_wheel_into_staging_with_env_shebang(tmp_path: Path) -> None:
    wheel = bd_wheels.standard_wheels(tmp_path / "w", lib_mb=1)[0]  # torch, with a script
    prefix = "/opt/envctl/envs/t"
    install_wheel(wheel, wheel.name, tmp_path / "stage", prefix, "3.11")
    root = tmp_path / "stage" / prefix.lstrip("/")
    site = root / "lib/python3.11/site-packages"
    assert (site / "torch/__init__.py").is_file()
    assert (site / "torch-2.5.1+cu124.dist-info/INSTALLER").read_text() == "envctl\n"
    script = (root / "bin/torchrun").read_text()
    assert script.startswith(f"#!{prefix}/bin/python\n")
    assert not list(site.rglob("*.pyc"))


def test_broken_wheel_is_a_build_error(tmp_path: Path) -> None:
    bad = tmp_path / "six-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BuildError, match="cannot install wheel"):
        install_wheel(bad, bad.name, tmp_path / "stage", "/opt/envctl/envs/t", "3.11")


def test_a_lock_without_a_time_takes_source_date_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    lock = bd_wheels.write_lock(tmp_path / "l.yml", [bd_wheels.make_wheel(tmp_path, "six", "1")])
    raw = yaml.safe_load(lock.read_text())
    raw["metadata"]["custom_metadata"] = None  # as conda-lock writes it: no envctl metadata
    lock.write_text(yaml.safe_dump(raw))
    with pytest.raises(LockError, match="cannot tell which Python"):  # py3-none-any only
        read_environment(lock, "linux-64")
    wheel = bd_wheels.make_wheel(tmp_path, "torch", "2.5.1", tag="cp312-cp312-manylinux_2_17_x86_64")
    lock = bd_wheels.write_lock(tmp_path / "m.yml", [wheel])
    raw = yaml.safe_load(lock.read_text())
    raw["metadata"]["custom_metadata"] = None
    lock.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    env = read_environment(lock, "linux-64")
    assert env.python == "3.12" and env.epoch == 1700000000 and env.env_name() == "default"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert read_environment(lock, "linux-64").epoch == 0
