"""The agent's relay on this machine's loopback: serve and fetch as real processes, TLS pinned,
the token checked, a growing partial forwarded, corrupt bytes refused and fetched elsewhere, and
nothing left (no port, no file) once serve is told to stop. Every store is under tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envctl.adapters.relay_tls import make_credentials, new_token

ROOT = Path(__file__).resolve().parents[3]
TOKEN = new_token()


def _agent(store: Path, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "envctl.node.agent", "--store", str(store), "--idle-timeout", "3", *args]
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environ, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _store(root: Path) -> Path:
    for sub in ("blobs/sha256", "tmp", "stamps", "state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def _blob(size: int = 3 << 20) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


class Relay:
    def __init__(self, tmp: Path, name: str, env: dict[str, str] | None = None) -> None:
        self.store = _store(tmp / name)
        self.creds = make_credentials(name, "127.0.0.1")
        self.port = _free_port()
        self.name = name
        self.proc = _agent(self.store, "relay-serve", env=env)
        doc = {
            "token": TOKEN,
            "tls": True,
            "cert": self.creds.cert_pem,
            "key": self.creds.key_pem,
            "bind": "127.0.0.1",
            "port": self.port,
            "max_seconds": 60.0,
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(doc).encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def source(self, pin: str | None = None) -> dict[str, Any]:
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "pin": pin or self.creds.pin}

    def put(self, data: bytes, digest: str) -> None:
        (self.store / "blobs" / "sha256" / digest[7:]).write_bytes(data)

    def stop(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(b"stop\n", timeout=20)
        return dict(json.loads(out.decode().strip().splitlines()[-1]))


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[Relay]]:
    made: list[Relay] = []
    yield made
    for r in made:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _fetch(
    store: Path, sources: list[dict[str, Any]], blobs: list[list[Any]], token: str = TOKEN
) -> dict[str, Any]:
    doc = {
        "token": token,
        "tls": True,
        "sources": sources,
        "blobs": blobs,
        "stall": 3.0,
        "min_rate": 0.0,
        "window": 10.0,
    }
    proc = _agent(store, "--soft", "relay-fetch")
    out, _ = proc.communicate(json.dumps(doc).encode(), timeout=60)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def test_a_blob_is_fetched_pinned_and_verified_then_nothing_is_left(
    tmp_path: Path, relays: list[Relay]
) -> None:
    data, digest = _blob()
    relay = Relay(tmp_path, "a")
    relays.append(relay)
    relay.put(data, digest)
    dest = _store(tmp_path / "dest")
    got = _fetch(dest, [relay.source()], [[digest, len(data)]])
    assert got["received"] == [digest] and got["bytes_written"] == len(data) and got["switches"] == []
    assert (dest / "blobs" / "sha256" / digest[7:]).read_bytes() == data
    said = relay.stop()
    assert said["served_bytes"] == len(data) and said["connections"] == 1
    assert not _listening(relay.port)
    assert list((relay.store / "tmp").iterdir()) == []  # the key never touched the disk


def test_a_growing_partial_is_forwarded_before_it_is_complete(tmp_path: Path, relays: list[Relay]) -> None:
    data, digest = _blob(4 << 20)
    relay = Relay(tmp_path, "a")
    relays.append(relay)
    partial = relay.store / "tmp" / f"{digest[7:]}.partial"

    def grow() -> None:  # what the relay's own receive does: append, then rename into blobs/
        with open(partial, "wb") as fh:
            for i in range(0, len(data), 1 << 20):
                fh.write(data[i : i + (1 << 20)])
                fh.flush()
                time.sleep(0.3)
        os.replace(partial, relay.store / "blobs" / "sha256" / digest[7:])

    writer = threading.Thread(target=grow)
    writer.start()
    dest = _store(tmp_path / "dest")
    got = _fetch(dest, [relay.source()], [[digest, len(data)]])
    writer.join()
    assert got["received"] == [digest] and got["switches"] == []
    assert (dest / "blobs" / "sha256" / digest[7:]).read_bytes() == data


def test_corrupt_bytes_are_refused_and_fetched_from_the_next_source(
    tmp_path: Path, relays: list[Relay]
) -> None:
    data, digest = _blob()
    bad = Relay(tmp_path, "bad", env={"ENVCTL_TEST_RELAY_CORRUPT": "1"})
    good = Relay(tmp_path, "good")
    relays += [bad, good]
    bad.put(data, digest)
    good.put(data, digest)
    dest = _store(tmp_path / "dest")
    got = _fetch(dest, [bad.source(), good.source()], [[digest, len(data)]])
    assert [(s["from"], s["kind"]) for s in got["switches"]] == [("bad", "corrupt")]
    assert got["sources"] == {digest: "good"}
    assert (dest / "blobs" / "sha256" / digest[7:]).read_bytes() == data


def test_a_wrong_pin_or_token_gets_nothing(tmp_path: Path, relays: list[Relay]) -> None:
    data, digest = _blob(1 << 20)
    relay = Relay(tmp_path, "a")
    relays.append(relay)
    relay.put(data, digest)
    dest = _store(tmp_path / "dest")
    got = _fetch(dest, [relay.source(pin="0" * 64)], [[digest, len(data)]])
    assert got["kind"] == "relay" and got["switches"][0]["kind"] == "pin"
    got = _fetch(dest, [relay.source()], [[digest, len(data)]], token="f" * 64)
    assert got["kind"] == "relay" and got["switches"][0]["kind"] == "refused"
    assert not (dest / "blobs" / "sha256" / digest[7:]).exists()
    assert relay.stop()["refused"] == 1


def test_serve_ends_when_its_stdin_closes(tmp_path: Path, relays: list[Relay]) -> None:
    relay = Relay(tmp_path, "a")
    relays.append(relay)
    assert relay.proc.stdin is not None
    relay.proc.stdin.close()  # the sender's SSH session ended
    assert relay.proc.wait(10) == 0
    assert not _listening(relay.port)


@pytest.mark.parametrize(
    "doc",
    [
        {"token": TOKEN},
        {
            "token": "x",
            "tls": True,
            "cert": "",
            "key": "",
            "bind": "127.0.0.1",
            "port": 1,
            "max_seconds": 1.0,
        },
        {
            "token": TOKEN,
            "tls": "yes",
            "cert": "",
            "key": "",
            "bind": "127.0.0.1",
            "port": 1,
            "max_seconds": 1.0,
        },
        # nothing the sender hands over can turn the test-only corruption on: no key beyond these
        {
            "token": TOKEN,
            "tls": True,
            "cert": "",
            "key": "",
            "bind": "127.0.0.1",
            "port": 1,
            "max_seconds": 1.0,
            "ENVCTL_TEST_RELAY_CORRUPT": "1",
        },
    ],
)
def test_a_bad_serve_document_is_an_input_error(tmp_path: Path, doc: dict[str, Any]) -> None:
    proc = _agent(_store(tmp_path / "s"), "--soft", "serve")
    out, _ = proc.communicate(json.dumps(doc).encode() + b"\n", timeout=20)
    assert json.loads(out)["kind"] == "input"
