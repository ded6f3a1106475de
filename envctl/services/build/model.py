"""What a build is asked for and what it answers: ``BuildOptions`` and ``BuildResult``
(schema ``envctl.build/1``, with its layers and how its files were verified).

Plain values: every build command (one platform, many, a fleet, a pack) passes the same options
and renders the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_SCHEMA = "envctl.build/1"


@dataclass(frozen=True)
class BuildOptions:
    lock: Path
    base: str | None  # None: the lock's base_image (the profile's), else DEFAULT_BASE
    platform: str = "linux/amd64"
    output: Path | None = None  # OCI layout directory
    docker_archive: Path | None = None
    load: bool = False
    tag: str | None = None
    env_name: str | None = None
    insecure_registry: bool = False
    cache_root: Path | None = None
    workers: int = 4
    force: bool = False  # write -o / --docker-archive over what envctl did not make
    platform_bases: tuple[tuple[str, str], ...] = ()  # (platform, ref): that platform's --base


@dataclass(frozen=True)
class LayerReport:
    kind: str
    name: str
    contents: str
    digest: str
    diff_id: str
    size: int
    unpacked: int
    files: int
    reused: bool


@dataclass(frozen=True)
class Verified:
    """How the files of a build were checked: by sha256, or by md5 where the lock has only that."""

    by_sha256: int
    md5_only: tuple[str, ...] = ()  # "name version" of each file checked by md5 alone

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``verified`` in ``envctl.build/1`` and ``envctl.render/1``)."""
        return {"by_sha256": self.by_sha256, "by_md5": len(self.md5_only), "md5_only": list(self.md5_only)}

    def summary(self) -> str:
        """One line for the text output."""
        total = self.by_sha256 + len(self.md5_only)
        if not self.md5_only:
            return f"verified {total} files by sha256"
        shown = ", ".join(self.md5_only[:5]) + (", ..." if len(self.md5_only) > 5 else "")
        return (
            f"verified {total} files: {self.by_sha256} by sha256, {len(self.md5_only)} by md5 only "
            f"(the lock has no sha256 for them: {shown})"
        )


@dataclass(frozen=True)
class BuildResult:
    image_digest: str  # digest of the manifest: what a registry or node names the image by
    config_digest: str
    tag: str
    env_name: str
    env_prefix: str
    python: str
    base: str
    base_layers: int
    base_size: int
    layers: tuple[LayerReport, ...]
    outputs: dict[str, str]
    loaded: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    python_from: str = "base"  # "base": a venv on the base's Python; "conda": the lock's python
    verified: Verified = field(default_factory=lambda: Verified(0))
    platform: str = "linux/amd64"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.build/1``."""
        return {
            "schema": RESULT_SCHEMA,
            "platform": self.platform,
            "image_digest": self.image_digest,
            "config_digest": self.config_digest,
            "tag": self.tag,
            "env": {
                "name": self.env_name,
                "prefix": self.env_prefix,
                "python": self.python,
                "python_from": self.python_from,
            },
            "verified": self.verified.to_dict(),
            "base": {"ref": self.base, "layers": self.base_layers, "size": self.base_size},
            "layers": [layer.__dict__ for layer in self.layers],
            "size": {
                "base": self.base_size,
                "envctl": sum(layer.size for layer in self.layers),
                "built": sum(layer.size for layer in self.layers if not layer.reused),
            },
            "outputs": self.outputs,
            "loaded": list(self.loaded),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
