"""OCI image documents (config, manifest, index) as plain values; no I/O, no clock.

Everything here is a function of its arguments, and JSON is serialised canonically (sorted keys,
no whitespace), so the same lock and base always give the same bytes and thus the same digests.

Checking documents that others wrote is ``core/image_check``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

#: Docker's media types and their OCI equivalents (same bytes, other name)
DOCKER_TO_OCI: dict[str, str] = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": MEDIA_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": MEDIA_LAYER_TAR,
    "application/vnd.docker.container.image.v1+json": MEDIA_CONFIG,
    "application/vnd.docker.distribution.manifest.v2+json": MEDIA_MANIFEST,
    "application/vnd.docker.distribution.manifest.list.v2+json": MEDIA_INDEX,
}

LABEL_PREFIX = "dev.envctl"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: platform as the CLI spells it (docker style) -> conda subdir, OCI architecture
PLATFORMS: dict[str, tuple[str, str]] = {
    "linux/amd64": ("linux-64", "amd64"),
    "linux/arm64": ("linux-aarch64", "arm64"),
}


def canonical_json(data: Any) -> bytes:
    """The one serialisation of image documents: sorted keys, compact, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """One layer blob as the manifest and the config see it."""

    digest: str  # of the blob as stored (compressed or not)
    diff_id: str  # of the uncompressed tar
    size: int
    media_type: str
    created_by: str = ""  # history entry text

    def descriptor(self) -> dict[str, Any]:
        """The manifest's descriptor of this layer."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class ImageFacts:
    """What the lock says about the environment, for labels and environment variables."""

    env_name: str
    env_prefix: str  # /opt/envctl/envs/<name>
    python: str  # "3.11"
    lock_hash: str
    created: str  # RFC 3339, fixed from the lock (never the clock)
    cuda: str | None = None
    min_driver: str | None = None
    frameworks: tuple[str, ...] = ()  # "torch==2.5.1"
    source: str | None = None  # org.opencontainers.image.source
    revision: str | None = None  # VCS revision of the lock, when known
    base_ref: str = ""
    base_digest: str = ""
    extra_labels: dict[str, str] = field(default_factory=dict)
    conda_python: bool = False  # the interpreter is the lock's conda python (a conda prefix, no venv)


def labels_for(facts: ImageFacts) -> dict[str, str]:
    """The image's labels: envctl's own plus the org.opencontainers.image.* annotations."""
    labels = {
        f"{LABEL_PREFIX}.lock.hash": facts.lock_hash,
        f"{LABEL_PREFIX}.env.name": facts.env_name,
        f"{LABEL_PREFIX}.env.prefix": facts.env_prefix,
        f"{LABEL_PREFIX}.python": facts.python,
        f"{LABEL_PREFIX}.cuda": facts.cuda or "none",
        f"{LABEL_PREFIX}.min_driver": facts.min_driver or "none",
        f"{LABEL_PREFIX}.frameworks": ",".join(facts.frameworks),
        "org.opencontainers.image.created": facts.created,
        "org.opencontainers.image.title": facts.env_name,
        "org.opencontainers.image.description": f"envctl environment {facts.env_name}",
        "org.opencontainers.image.version": facts.lock_hash[:12],
        "org.opencontainers.image.revision": facts.revision or facts.lock_hash,
        "org.opencontainers.image.vendor": "envctl",
    }
    if facts.source:
        labels["org.opencontainers.image.source"] = facts.source
    if facts.base_ref:
        labels["org.opencontainers.image.base.name"] = facts.base_ref
    if facts.base_digest:
        labels["org.opencontainers.image.base.digest"] = facts.base_digest
    labels.update(facts.extra_labels)
    return labels


def environment_for(facts: ImageFacts, base_env: list[str]) -> list[str]:
    """The container environment: the env's bin first on PATH, VIRTUAL_ENV (or CONDA_PREFIX for a conda python), GPU runtime hints."""
    env = dict(item.split("=", 1) for item in base_env if "=" in item)
    env["PATH"] = f"{facts.env_prefix}/bin:" + env.get("PATH", DEFAULT_PATH)
    env["CONDA_PREFIX" if facts.conda_python else "VIRTUAL_ENV"] = facts.env_prefix
    env["PYTHONUNBUFFERED"] = "1"
    if facts.cuda:
        # Read by the NVIDIA container toolkit: expose GPUs, and refuse hosts whose driver is
        # older than the CUDA runtime in the image.
        env["NVIDIA_VISIBLE_DEVICES"] = "all"
        env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility"
        env["NVIDIA_REQUIRE_CUDA"] = f"cuda>={facts.cuda}"
    names = {f.split("==")[0] for f in facts.frameworks}
    if "tensorflow" in names:
        env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    if names & {"jax", "jaxlib"}:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return [f"{key}={value}" for key, value in sorted(env.items())]


def image_config(
    base_config: dict[str, Any],
    base_layers: tuple[Layer, ...],
    layers: tuple[Layer, ...],
    facts: ImageFacts,
    architecture: str,
) -> dict[str, Any]:
    """The OCI image config: the base's config with envctl's layers, env and labels on top."""
    base_runtime = dict(base_config.get("config") or {})
    runtime = {
        key: value
        for key, value in base_runtime.items()
        if key in ("User", "ExposedPorts", "WorkingDir", "StopSignal", "Volumes")
    }
    runtime["Env"] = environment_for(facts, list(base_runtime.get("Env") or []))
    runtime["Cmd"] = base_runtime.get("Cmd") or ["python"]
    if base_runtime.get("Entrypoint"):
        runtime["Entrypoint"] = base_runtime["Entrypoint"]
    runtime["Labels"] = {**(base_runtime.get("Labels") or {}), **labels_for(facts)}
    history = list(base_config.get("history") or [])
    if not history:
        history = [{"created_by": "base layer", "created": facts.created} for _ in base_layers]
    history += [
        {"created": facts.created, "created_by": layer.created_by, "comment": "envctl"} for layer in layers
    ]
    return {
        "architecture": architecture,
        "os": "linux",
        "created": facts.created,
        "author": "envctl",
        "config": runtime,
        "rootfs": {
            "type": "layers",
            "diff_ids": [layer.diff_id for layer in (*base_layers, *layers)],
        },
        "history": history,
    }


def image_manifest(
    config_digest: str, config_size: int, layers: tuple[Layer, ...], annotations: dict[str, str]
) -> dict[str, Any]:
    """The OCI image manifest."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [layer.descriptor() for layer in layers],
        "annotations": annotations,
    }


def manifest_annotations(facts: ImageFacts) -> dict[str, str]:
    """The org.opencontainers.image.* subset of the labels, for the manifest."""
    return {k: v for k, v in labels_for(facts).items() if k.startswith("org.opencontainers.")}


def image_index(
    manifest_digest: str, manifest_size: int, ref_name: str, media_type: str = MEDIA_MANIFEST
) -> dict[str, Any]:
    """The index.json of an OCI layout holding one image (or one ``platform_index``, its
    ``media_type`` MEDIA_INDEX) under ``ref_name``."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": media_type,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": ref_name},
            }
        ],
    }


def platform_index(manifests: list[tuple[str, int, str]]) -> dict[str, Any]:
    """A multi-platform image: an image index over one manifest per ``(digest, size, platform)``
    (platform as ``linux/arm64``), in the order given, so the same manifests give the same bytes."""
    entries = []
    for digest, size, platform in manifests:
        os_, _, architecture = platform.partition("/")
        entries.append(
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": digest,
                "size": size,
                "platform": {"architecture": architecture, "os": os_},
            }
        )
    return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}


@dataclass(frozen=True)
class BaseImage:
    """A base image whose config and layer blobs are in the blob cache."""

    ref: str  # as the user named it
    manifest_digest: str  # digest of its manifest (or of its config when there was none)
    config: dict[str, Any]
    layers: tuple[Layer, ...]

    @property
    def env(self) -> list[str]:
        """The base's container environment."""
        return list((self.config.get("config") or {}).get("Env") or [])
