"""Activation per runtime: docker/podman load + tag, prefix symlink switch. Standard library only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
from typing import IO, Any

from envctl.node.store import AgentError, Store

#: The agent's copy of ``envctl.core.node.RUNTIMES``: the agent runs on nodes with the standard
#: library alone and may not import the core; tests/unit/node/test_runtimes_agree.py keeps the two
#: lists equal.
RUNTIMES = ("docker", "podman", "prefix", "oci")


def docker_env(args: argparse.Namespace) -> dict[str, str]:
    """Environment for the engine CLI: DOCKER_HOST from the inventory when set."""
    env = dict(os.environ)
    if args.docker_host:
        env["DOCKER_HOST"] = args.docker_host
    return env


def engine(args: argparse.Namespace, *argv: str, stdin: IO[bytes] | None = None) -> str:
    """Run the engine CLI (docker / podman); its last stderr line becomes the error."""
    proc = subprocess.run(
        [args.runtime, *argv], stdin=stdin, capture_output=True, env=docker_env(args), check=False
    )
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise AgentError(f"{args.runtime} {argv[0]} failed: {msg[-1]}", "runtime")
    return proc.stdout.decode("utf-8", "replace").strip()


def image_ref(env: str, digest: str) -> str:
    """The versioned tag an image is loaded under: ``envctl/ENV:HEX12``."""
    return f"envctl/{env}:{digest[7:19]}"


def image_id(args: argparse.Namespace, ref: str) -> str | None:
    """The image id behind ``ref`` in the node's engine, or None."""
    try:
        return engine(args, "image", "inspect", "--format", "{{.Id}}", ref)
    except AgentError:
        return None


def docker_load(store: Store, args: argparse.Namespace, manifest: dict[str, Any]) -> str:
    """Feed ``docker load`` a docker-archive built on the fly from local blobs (nothing re-sent)."""
    import tarfile

    env, digest = args.env, args.manifest
    config = str(manifest["config"]["digest"])
    ref = image_ref(env, digest)
    if image_id(args, ref) == config:
        return config
    layers = [layer["digest"] for layer in manifest["layers"]]
    index = [
        {
            "Config": config[7:] + ".json",
            "RepoTags": [ref],
            "Layers": [d[7:] + "/layer.tar" for d in layers],
        }
    ]
    proc = subprocess.Popen(
        [args.runtime, "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=docker_env(args),
    )
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            data = json.dumps(index).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, fileobj=__import__("io").BytesIO(data))
            for name, d in [(config[7:] + ".json", config)] + [(d[7:] + "/layer.tar", d) for d in layers]:
                path = store.blob(d)
                info = tarfile.TarInfo(name)
                info.size = os.path.getsize(path)
                with open(path, "rb") as fh:
                    tar.addfile(info, fileobj=fh)
    except BrokenPipeError:
        pass
    _, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise AgentError(f"{args.runtime} load failed: {lines[-1]}", "runtime")
    got = image_id(args, ref)
    if got != config:
        raise AgentError(f"{ref} loaded image id {got}, expected {config}", "runtime")
    return config


def prefix_dir(args: argparse.Namespace, env: str, digest: str) -> str:
    """Where a prefix environment of this digest is unpacked."""
    return os.path.join(os.path.abspath(args.prefix_root), f"{env}@{digest[7:]}")


def link_target(env: str, record: dict[str, Any]) -> str:
    """What the ENV symlink of a prefix environment names: its tree ``ENV@HEX``, or the tree's
    host view ``ENV@HEX/.envctl-host`` when the record says it has one (``hostenv``)."""
    tree = "{}@{}".format(env, record["digest"][7:])
    return tree + "/.envctl-host" if record.get("host") is True else tree


def flip(args: argparse.Namespace, env: str, record: dict[str, Any] | None) -> None:
    """Point ENV at ``record`` (None: at nothing). One rename or one tag: never half-switched."""
    if args.runtime in ("docker", "podman"):
        if record is None:
            with contextlib.suppress(AgentError):
                engine(args, "rmi", "--no-prune", f"envctl/{env}:current")
        else:
            engine(args, "tag", image_ref(env, record["digest"]), f"envctl/{env}:current")
    elif args.runtime == "prefix":
        link = os.path.join(os.path.abspath(args.prefix_root), env)
        if record is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            return
        tmp = f"{link}.envctl-{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(link_target(env, record), tmp)
        try:
            os.rename(tmp, link)  # atomic: readers see the old or the new tree, nothing between
        except OSError as exc:
            os.unlink(tmp)
            raise AgentError(f"cannot switch {link}: {exc.strerror}", "runtime") from exc
