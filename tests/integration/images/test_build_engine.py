"""Build on the debootstrap base, load into a real engine, run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bd_cli import build_json, run_cli
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration


def test_build_load_and_smoke(
    tmp_path: Path, bd_lock: Path, bd_cache: Path, bd_base_layout: Path, bd_docker: str
) -> None:
    result = build_json(
        [
            str(bd_lock),
            "--base",
            f"oci:{bd_base_layout}",
            "-o",
            str(tmp_path / "img"),
            "--load",
            "--tag",
            "bd/smoke:1",
        ],
        bd_cache,
    )
    assert result["loaded"] == ["bd/smoke:1"]
    kinds = [layer["kind"] for layer in result["layers"]]
    assert kinds == ["cuda", "framework", "package", "package", "metadata"]

    code, out, err = run_cli(["smoke", "bd/smoke:1", "--json"])
    assert code == 0, err
    smoke = json.loads(out)
    assert_envelope(smoke, code, "envctl.smoke/1")
    assert smoke["ok"] and smoke["python"].startswith("3.11.")
    versions = {p["name"]: p["version"] for p in smoke["packages"]}
    assert versions == {
        "numpy": "1.26.4",
        "nvidia-cudnn-cu12": "9.1.0.70",
        "six": "1.16.0",
        "torch": "2.5.1+cu124",
    }
    torch = next(p for p in smoke["packages"] if p["name"] == "torch")
    assert torch["modules"] == {"torch": "2.5.1+cu124"}
    assert smoke["gpus"] == {"torch": []}  # no GPU here, and the container says so

    labels = smoke["labels"]
    assert labels["dev.envctl.cuda"] == "12.4"
    assert labels["dev.envctl.min_driver"] == "550.54.14"
    assert labels["dev.envctl.python"] == "3.11"
    assert labels["dev.envctl.frameworks"] == "torch==2.5.1"
    assert labels["dev.envctl.lock.hash"] in bd_lock.read_text()

    import docker

    client = docker.from_env()
    try:
        image = client.images.get("bd/smoke:1")
        assert image.labels["org.opencontainers.image.created"] == "2024-06-01T00:00:00Z"
        env = dict(e.split("=", 1) for e in image.attrs["Config"]["Env"])
        assert env["PATH"].startswith("/opt/envctl/envs/bdtest/bin:")
        assert env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.4"
        # one container: the console script's shebang points at the env's python (first on
        # PATH), and the SBOM lists every package of the lock
        output = client.containers.run(
            "bd/smoke:1",
            ["sh", "-c", "torchrun && cat /opt/envctl/envs/bdtest/envctl/sbom.spdx.json"],
            network_mode="none",
            remove=True,
        ).decode()
        first, sbom = output.split("\n", 1)
        assert first.strip() == "torch 2.5.1+cu124"
        names = sorted(p["name"] for p in json.loads(sbom)["packages"])
        assert names == ["numpy", "nvidia-cudnn-cu12", "six", "torch"]
    finally:
        client.close()


def test_docker_builder_from_rendered_dockerfile(
    tmp_path: Path, bd_lock: Path, bd_cache: Path, bd_base_loaded: str
) -> None:
    code, out, err = run_cli(
        [
            "build",
            str(bd_lock),
            "--builder",
            "docker",
            "--base",
            "base:debian-bookworm-python",
            "--tag",
            "bd/docker-built:1",
            "--json",
        ],
        bd_cache,
    )
    assert code == 0, err
    built = json.loads(out)
    assert_envelope(built, code, "envctl.build-docker/1")
    assert built["tag"] == "bd/docker-built:1"
    code, out, err = run_cli(["smoke", "bd/docker-built:1", "--json"])
    assert code == 0, err
    smoke = json.loads(out)
    assert_envelope(smoke, code, "envctl.smoke/1")
    assert sorted(p["name"] for p in smoke["packages"]) == [
        "numpy",
        "nvidia-cudnn-cu12",
        "six",
        "torch",
    ]
    assert smoke["labels"]["dev.envctl.cuda"] == "12.4"


def test_base_from_local_engine(tmp_path: Path, bd_lock: Path, bd_cache: Path, bd_base_loaded: str) -> None:
    result = build_json(
        [str(bd_lock), "--base", f"docker:{bd_base_loaded}", "-o", str(tmp_path / "img")],
        bd_cache,
    )
    assert result["base"]["layers"] == 1
    assert (tmp_path / "img" / "index.json").is_file()


def test_base_build_command_reuses_the_cached_base(bd_base_layout: Path, bd_base_cache: Path) -> None:
    code, out, err = run_cli(
        ["base", "build", "debian-bookworm-python", "--no-load", "--cache-dir", str(bd_base_cache), "--json"]
    )
    assert code == 0, err
    doc = json.loads(out)
    assert_envelope(doc, code, "envctl.base/1")
    assert doc["reused"] is True and doc["layout"] == str(bd_base_layout) and doc["loaded"] == []
