"""A lock as the image builder sees it: the files of one platform and the facts behind them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ENV_ROOT = "/opt/envctl/envs"


@dataclass(frozen=True)
class LockedFile:
    """One file of the lock that ends up in the image."""

    name: str  # normalised distribution / conda package name
    version: str
    manager: str  # "pip" | "conda"
    url: str
    sha256: str
    filename: str  # last path segment of the URL, e.g. "torch-2.5.1-cp311-...whl"


@dataclass(frozen=True)
class LockedEnv:
    """The part of a lock that one image is built from."""

    path: str  # the lockfile, for messages
    platform: str  # conda subdir, "linux-64"
    files: tuple[LockedFile, ...]
    content_hash: str  # envctl's (or conda-lock's) hash of the lock's inputs
    python: str  # "3.11"
    epoch: int  # fixed mtime of every file in the image (seconds since 1970)
    custom: dict[str, str] = field(default_factory=dict)  # metadata.custom_metadata

    def meta(self, key: str) -> str:
        """envctl's metadata ``key``: ``envctl_<key>`` (what `envctl lock` writes) or
        ``envctl.<key>``; ``""`` when absent."""
        return self.custom.get(f"envctl_{key}") or self.custom.get(f"envctl.{key}") or ""

    @property
    def solution(self) -> dict[str, Any]:
        """The solver's solution (summary) stored in the lock, or ``{}``."""
        raw = self.meta("solution")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def cuda(self) -> str | None:
        """CUDA version the lock was solved for, if any."""
        value = self.solution.get("cuda") or self.meta("cuda")
        return str(value) if value else None

    @property
    def min_driver(self) -> str | None:
        """Minimum NVIDIA driver the lock needs, if any."""
        value = self.solution.get("min_driver") or self.meta("min_driver")
        return str(value) if value else None

    @property
    def frameworks(self) -> tuple[str, ...]:
        """``name==version`` of each framework the solution chose (else of framework packages)."""
        chosen = self.solution.get("frameworks") or []
        if isinstance(chosen, dict):  # the lock's summary: {name: version}
            return tuple(sorted(f"{name}=={version}" for name, version in chosen.items()))
        out = [
            f"{item['name']}=={item['version']}"
            for item in chosen
            if isinstance(item, dict) and "name" in item and "version" in item
        ]
        return tuple(sorted(out))

    def env_name(self, override: str | None = None) -> str:
        """The environment's name: the option, else the solution's profile, else ``default``."""
        name = override or self.meta("env_name") or self.solution.get("profile")
        return str(name or "default")

    def env_prefix(self, override: str | None = None) -> str:
        """Where the environment lives in the image."""
        return f"{ENV_ROOT}/{self.env_name(override)}"
