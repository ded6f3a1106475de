"""The unit suite's network guard (tests/unit/conftest.py) catches what it must, and only that."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest

from .conftest import NetworkAccess


def test_a_connection_off_this_machine_is_refused_and_recorded(network_attempts: list[str]) -> None:
    with pytest.raises(NetworkAccess):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
    with pytest.raises(NetworkAccess):
        socket.getaddrinfo("pypi.org", 443)
    with pytest.raises(OSError):  # urllib wraps it, but the attempt is on record all the same
        urllib.request.urlopen("https://pypi.org/simple/", timeout=1)
    # through the dead proxy, or straight when urllib's opener was built before the proxy was set
    assert network_attempts[:2] == ["192.0.2.1", "pypi.org"]
    assert network_attempts[2:] in (["a proxied URL"], ["pypi.org"])
    network_attempts.clear()  # seen: this test is about the guard itself


def test_loopback_and_unix_sockets_are_allowed(network_attempts: list[str]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    left, right = socket.socketpair()
    left.close()
    right.close()
    assert network_attempts == []


def test_child_processes_get_a_dead_proxy() -> None:
    code = "import urllib.request; urllib.request.urlopen('http://example.com/', timeout=5)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Connection refused" in result.stderr
