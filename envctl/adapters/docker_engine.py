"""The local Docker engine through the docker SDK: save, load, run, build.

The engine is found the SDK's way (DOCKER_HOST, else the default socket). Every SDK and API error
is translated here into a BuildError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.errors import BuildError, BuildFailure


@contextlib.contextmanager
def engine(timeout: int = 600) -> Iterator[Any]:
    """A connected docker client; BuildError when no engine answers."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise BuildError(f"no Docker engine answers: {exc}", hint="start dockerd or set DOCKER_HOST") from exc
    try:
        yield client
    except DockerException as exc:
        raise BuildFailure(f"Docker engine: {exc}") from exc
    finally:
        client.close()


def engine_running() -> bool:
    """Whether a Docker engine answers (used to decide whether to also load a base image)."""
    try:
        with engine(timeout=5):
            return True
    except BuildError:
        return False


def save_image(name: str, target: Path) -> None:
    """``docker save NAME > target``."""
    from docker.errors import ImageNotFound

    with engine() as client:
        try:
            image = client.images.get(name)
        except ImageNotFound:
            raise BuildError(f"docker:{name}: no such image in the local engine") from None
        with open(target, "wb") as out:
            for chunk in image.save(named=True):
                out.write(chunk)


def load_archive(path: Path) -> list[str]:
    """``docker load < path``; returns the tags (or ids) it loaded."""
    with engine() as client, open(path, "rb") as fh:
        images = client.images.load(fh)
    return [tag for image in images for tag in (image.tags or [image.id])]


class EngineLoader:
    """``docker load`` into the local engine (a ``core.build_parts.ImageLoader``)."""

    def load(self, archive: Path) -> list[str]:
        """The tags (or ids) the engine loaded from ``archive``."""
        return load_archive(archive)


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str


def run_container(image: str, command: list[str], gpus: bool, platform: str | None = None) -> RunResult:
    """Run ``command`` in a throwaway container with no network; collects both streams.

    ``platform`` (``linux/arm64``) names the image's platform when it is not the engine's: the
    engine then runs it through binfmt_misc (qemu-user-static)."""
    from docker.types import DeviceRequest

    requests = [DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpus else None
    extra = {"platform": platform} if platform else {}
    with engine() as client:
        container = client.containers.create(
            image, command=command, network_mode="none", device_requests=requests, **extra
        )
        try:
            container.start()
            status = container.wait(timeout=600)
            stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
    return RunResult(int(status.get("StatusCode", 1)), stdout, stderr)


def image_labels(name: str) -> dict[str, str]:
    """The labels of an image in the local engine."""
    with engine() as client:
        return dict(client.images.get(name).labels or {})


def image_architecture(name: str) -> str:
    """The OCI architecture of an image in the local engine (amd64, arm64)."""
    with engine() as client:
        return str(client.images.get(name).attrs.get("Architecture") or "amd64")


def build_context(context: Path, tag: str, nocache: bool = False) -> str:
    """``docker build -t tag context``; returns the image id. Build logs end up in the error."""
    from docker.errors import BuildError as DockerBuildError

    with engine() as client:
        try:
            image, _logs = client.images.build(
                path=str(context), tag=tag, rm=True, nocache=nocache, network_mode="none"
            )
        except DockerBuildError as exc:
            tail = "".join(str(line.get("stream", "")) for line in exc.build_log)[-400:]
            raise BuildFailure(f"docker build failed: {exc.msg}: {tail.strip()}") from exc
        return str(image.id)
