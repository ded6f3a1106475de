"""Image documents: labels, environment, config; pure and canonical."""

from __future__ import annotations

from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    ImageFacts,
    Layer,
    canonical_json,
    environment_for,
    image_config,
    image_manifest,
    labels_for,
)

FACTS = ImageFacts(
    env_name="train",
    env_prefix="/opt/envctl/envs/train",
    python="3.11",
    lock_hash="abc123",
    created="2024-06-01T00:00:00Z",
    cuda="12.4",
    min_driver="550.54.14",
    frameworks=("torch==2.5.1",),
)


def test_labels_carry_lock_cuda_driver_and_oci_annotations() -> None:
    labels = labels_for(FACTS)
    assert labels["dev.envctl.lock.hash"] == "abc123"
    assert labels["dev.envctl.cuda"] == "12.4"
    assert labels["dev.envctl.min_driver"] == "550.54.14"
    assert labels["org.opencontainers.image.created"] == "2024-06-01T00:00:00Z"
    assert labels["org.opencontainers.image.revision"] == "abc123"


def test_environment_puts_env_bin_first_and_keeps_base_vars() -> None:
    env = dict(e.split("=", 1) for e in environment_for(FACTS, ["PATH=/usr/bin:/bin", "LANG=C"]))
    assert env["PATH"] == "/opt/envctl/envs/train/bin:/usr/bin:/bin"
    assert env["LANG"] == "C"
    assert env["VIRTUAL_ENV"] == "/opt/envctl/envs/train"
    assert env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.4"


def test_cpu_only_image_has_no_nvidia_env() -> None:
    facts = ImageFacts("cpu", "/opt/envctl/envs/cpu", "3.11", "h", "1970-01-01T00:00:00Z")
    assert not any(e.startswith("NVIDIA_") for e in environment_for(facts, []))
    assert labels_for(facts)["dev.envctl.cuda"] == "none"


def test_config_lists_base_then_own_diff_ids_and_is_canonical() -> None:
    base = (Layer("sha256:" + "1" * 64, "sha256:" + "2" * 64, 10, MEDIA_LAYER_GZIP),)
    own = (Layer("sha256:" + "3" * 64, "sha256:" + "4" * 64, 5, MEDIA_LAYER_GZIP, "envctl x"),)
    base_config = {"config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "User": "1000"}}
    config = image_config(base_config, base, own, FACTS, "amd64")
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "2" * 64, "sha256:" + "4" * 64]
    assert config["config"]["User"] == "1000" and config["config"]["Cmd"] == ["/bin/sh"]
    assert config["created"] == FACTS.created
    assert len(config["history"]) == 2
    assert canonical_json(config) == canonical_json(image_config(base_config, base, own, FACTS, "amd64"))
    manifest = image_manifest("sha256:" + "5" * 64, 99, base + own, {})
    assert [x["digest"] for x in manifest["layers"]] == [base[0].digest, own[0].digest]
