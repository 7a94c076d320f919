"""No test may reach the internet: a guard that refuses every connection or name look-up
that is not loopback, in the test process (autouse in tests/conftest.py).

Looking up a public name raises ``socket.gaierror``, which is also what a machine without
network sees; a test can read ``network_guard.attempts`` to check what was refused.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Records and refuses every attempt to leave the machine."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not _is_loopback(host):
                guard.attempts.append(f"getaddrinfo({host!r})")
                raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test guard: {host}")
            return real_getaddrinfo(host, *args, **kwargs)

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
                guard.attempts.append(f"connect({address!r})")
                raise ConnectionRefusedError(f"blocked by the test guard: {address!r}")

        def connect(sock: socket.socket, address: Any) -> None:
            check(sock, address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            check(sock, address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
