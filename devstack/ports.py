"""Refuse to start a part on a port that something else already holds."""

from __future__ import annotations

import errno
import socket
import time

from devstack.errors import PortInUseError


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when binding ``host:port`` fails because the address is taken (as a server would try it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def ensure_port_free(port: int, env_name: str, other: str, *, grace: float = 0.0) -> None:
    """Raise PortInUseError naming the variable to change; ``other`` guesses the culprit ("another broker").

    ``grace``: seconds to wait for the port to be released first, for a part of ours that was just killed (the
    kernel closes a killed JVM's sockets only once all its threads are gone)."""
    deadline = time.monotonic() + grace
    while port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    if port_in_use(port):
        raise PortInUseError(
            f"port {port} ({env_name}) is already in use: {other} or a stale process? "
            f"Set {env_name} to a free port or stop it"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (for tests; another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
