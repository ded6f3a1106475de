"""Unit tests never touch the network.

Any socket connection to an address other than loopback (or a unix socket) fails the test, even
when the code under test swallows the error it gets. Child processes (uv) and native clients
(rattler) do not use Python's sockets: they get a proxy on a closed loopback port, so a request
to the outside fails instead of leaving the machine. Tests that need PyPI live in
tests/integration and carry the ``network`` marker.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
#: discard (port 9): nothing listens there, so a proxied request fails at once; a connection to
#: it from this process is a request for the outside too, and is recorded as one
_DEAD_PROXY_PORT = 9
_DEAD_PROXY = f"http://127.0.0.1:{_DEAD_PROXY_PORT}"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class NetworkAccess(OSError):
    """Raised (and recorded) when a unit test opens a connection off this machine."""


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 is this machine, too


def _target(family: int, address: Any) -> str | None:
    """The non-local host ``address`` points at, or None when it stays on this machine."""
    if family == getattr(socket, "AF_UNIX", None):
        return None
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(address, tuple) and len(address) > 1 and address[1] == _DEAD_PROXY_PORT:
        return "a proxied URL"
    return None if _is_loopback(host) else str(host)


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hosts this test tried to reach; any left at the end fail it."""
    attempts: list[str] = []
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def refuse(host: str) -> NetworkAccess:
        attempts.append(host)
        return NetworkAccess(f"unit tests must not use the network (tried {host})")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        host = _target(self.family, address)
        if host is not None:
            raise refuse(host)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        host = _target(self.family, address)
        if host is not None:
            raise refuse(host)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # a name lookup is network traffic too (DNS), before any connection
        if host is not None and not _is_loopback(host if isinstance(host, str) else str(host)):
            raise refuse(str(host))
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    for name in _PROXY_VARS:
        monkeypatch.setenv(name, _DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,::1")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1,::1")
    yield attempts
    if attempts:
        pytest.fail(f"unit test tried to reach the network: {', '.join(sorted(set(attempts)))}")
