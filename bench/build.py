"""envctl build vs docker build of the rendered Dockerfile, from the same local wheels.

Both sides start warm: every wheel is already in envctl's download cache and in the Docker build
context, and the debootstrap base is already built (OCI layout) and loaded (engine).

    full      envctl build with an empty layer cache   vs  docker build --no-cache
    rebuild   after changing one small package:
              envctl build with warm caches             vs  docker build with its build cache

Prints both ratios (docker seconds / envctl seconds) and the bytes of the layers each rebuild
changed. Run as root on a machine with docker.io and debootstrap:

    .venv/bin/python bench/build.py [--packages 20] [--big-mb 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named build.py: keep its folder off sys.path, or it shadows pypa's `build`
# package that conda-lock imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "build"))

import bd_services  # noqa: E402
import bd_wheels  # noqa: E402


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)  # incompressible, like real .so files


def make_wheelhouse(directory: Path, packages: int, big_mb: int, small_version: str) -> list[Path]:
    """A CUDA-like stack: big nvidia + torch wheels, and ``packages`` small pure-Python ones."""
    mb = 1024 * 1024
    wheels = [
        bd_wheels.make_wheel(
            directory,
            "nvidia-cudnn-cu12",
            "9.1.0.70",
            {
                "nvidia/cudnn/__init__.py": "",
                "nvidia/cudnn/lib/libcudnn.so.9": _noise(1, big_mb * mb),
            },
            tag="py3-none-manylinux2014_x86_64",
            top_level="nvidia",
        ),
        bd_wheels.make_wheel(
            directory,
            "nvidia-cublas-cu12",
            "12.4.5.8",
            {
                "nvidia/cublas/__init__.py": "",
                "nvidia/cublas/lib/libcublas.so.12": _noise(2, big_mb * mb // 2),
            },
            tag="py3-none-manylinux2014_x86_64",
            top_level="nvidia",
        ),
        bd_wheels.make_wheel(
            directory,
            "torch",
            "2.5.1",
            {
                "torch/__init__.py": '__version__ = "2.5.1"\n',
                "torch/lib/libtorch_cpu.so": _noise(3, big_mb * mb // 2),
            },
            tag="cp311-cp311-manylinux_2_17_x86_64",
        ),
    ]
    for index in range(packages):
        version = small_version if index == 0 else "1.0.0"
        files = {
            f"bdpkg{index:02d}/__init__.py": f'__version__ = "{version}"\n',
            f"bdpkg{index:02d}/data.py": f"DATA = {_noise(100 + index, 20_000).hex()!r}\n",
        }
        wheels.append(bd_wheels.make_wheel(directory, f"bdpkg{index:02d}", version, files))
    return wheels


def envctl_build(lock: Path, base: str, out: Path, cache: Path) -> tuple[float, dict]:
    """Time ``envctl build`` as a user runs it (a fresh process, CLI included)."""
    started = time.monotonic()
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "envctl"),
            "build",
            str(lock),
            "--base",
            base,
            "-o",
            str(out),
            "--cache-dir",
            str(cache),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return time.monotonic() - started, json.loads(result.stdout)


def docker_build(context: Path, tag: str, nocache: bool) -> float:
    from envctl.adapters.docker_engine import build_context

    started = time.monotonic()
    build_context(context, tag, nocache=nocache)
    return time.monotonic() - started


def docker_layers(tag: str) -> list[tuple[str, int]]:
    import docker

    client = docker.from_env()
    try:
        image = client.images.get(tag)
        sizes = [int(h.get("Size", 0)) for h in reversed(image.history()) if h.get("Size")]
        return list(zip(image.attrs["RootFS"]["Layers"], sizes + [0] * 99, strict=False))
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20, help="small packages in the stack")
    parser.add_argument("--big-mb", type=int, default=60, help="size of the biggest wheel (MiB)")
    args = parser.parse_args()

    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.services.build.base_images import build_base, load_recipe
    from envctl.services.build.render import render_dockerfile

    engine = bd_services.start_engine()
    os.environ["DOCKER_HOST"] = bd_services.DOCKER_HOST
    work = Path(tempfile.mkdtemp(prefix="bd-bench-"))
    try:
        recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
        base = build_base(recipe, BlobCache(default_cache_root()), load=True)
        base_ref, from_image = f"oci:{base.layout}", "envctl-base/debian-bookworm-python:latest"
        cache = work / "cache"

        locks = {}
        for name, version in (("a", "1.0.0"), ("b", "1.0.1")):
            wheels = make_wheelhouse(work / f"wheels-{name}", args.packages, args.big_mb, version)
            locks[name] = bd_wheels.write_lock(work / f"{name}.yml", wheels)
        total_mb = sum(p.stat().st_size for p in (work / "wheels-a").iterdir()) / 2**20
        print(
            f"stack: {len(list((work / 'wheels-a').iterdir()))} wheels, {total_mb:.0f} MiB; "
            f"base {base.image_digest[:19]}"
        )

        # warm both sides: envctl's download cache and docker's base image + contexts
        for name, lock in locks.items():
            render_dockerfile(lock, work / f"ctx-{name}", from_image, BlobCache(cache))
        envctl_build(locks["a"], base_ref, work / "warm", cache)

        shutil.rmtree(cache / "layers")  # full build: every layer is built again
        t_envctl_full, first = envctl_build(locks["a"], base_ref, work / "out-a", cache)
        t_docker_full = docker_build(work / "ctx-a", "bd/bench:a", nocache=True)

        t_envctl_re, second = envctl_build(locks["b"], base_ref, work / "out-b", cache)
        docker_before = dict(docker_layers("bd/bench:a"))
        t_docker_re = docker_build(work / "ctx-b", "bd/bench:b", nocache=False)
        docker_after = docker_layers("bd/bench:b")

        old = {layer["name"]: layer["digest"] for layer in first["layers"]}
        changed = [layer for layer in second["layers"] if old.get(layer["name"]) != layer["digest"]]
        docker_changed = [(d, s) for d, s in docker_after if d not in docker_before]
        print(
            f"full build:  envctl {t_envctl_full:6.2f}s  docker {t_docker_full:6.2f}s  "
            f"ratio {t_docker_full / t_envctl_full:5.1f}x"
        )
        print(
            f"rebuild:     envctl {t_envctl_re:6.2f}s  docker {t_docker_re:6.2f}s  "
            f"ratio {t_docker_re / t_envctl_re:5.1f}x"
        )
        print(
            "envctl changed layers: "
            + ", ".join(f"{layer['name']} ({layer['size']} B)" for layer in changed)
            + f"; total {sum(layer['size'] for layer in changed)} B compressed"
        )
        print(
            f"docker changed layers: {len(docker_changed)}, "
            f"{sum(s for _, s in docker_changed)} B uncompressed"
        )
        again = envctl_build(locks["a"], base_ref, work / "again", cache)[1]
        print(f"envctl digest reproducible: {first['image_digest'] == again['image_digest']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        bd_services.stop_engine(engine)


if __name__ == "__main__":
    main()
