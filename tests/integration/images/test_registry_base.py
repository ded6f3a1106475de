"""A base image pulled from a real OCI registry (docker-registry), pushed there with skopeo."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bd_cli import build_json

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bd_registry(tmp_path: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a plain-HTTP registry with filesystem storage under tmp_path."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry)")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'bd-registry'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("docker-registry did not start")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_base_from_registry(tmp_path: Path, bd_lock: Path, bd_base_layout: Path, bd_registry: str) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is not installed (apt-get install skopeo)")
    target = f"{bd_registry}/bd/debian-python:3.11"
    subprocess.run(
        [skopeo, "copy", "--dest-tls-verify=false", f"oci:{bd_base_layout}", f"docker://{target}"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    from_registry = build_json(
        [str(bd_lock), "--base", target, "--insecure-registry", "-o", str(tmp_path / "r")],
        tmp_path / "cache",
    )
    from_layout = build_json(
        [str(bd_lock), "--base", f"oci:{bd_base_layout}", "-o", str(tmp_path / "l")],
        tmp_path / "cache",
    )
    # the base's layers are reused as-is: same blobs whichever way the base arrived
    manifests = []
    for out in ("r", "l"):
        index = json.loads((tmp_path / out / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifests.append(json.loads((tmp_path / out / "blobs" / "sha256" / digest).read_text()))
    assert manifests[0]["layers"] == manifests[1]["layers"]
    assert [x["digest"] for x in from_registry["layers"]] == [x["digest"] for x in from_layout["layers"]]
    assert from_registry["base"]["ref"] == f"registry:{target}"
