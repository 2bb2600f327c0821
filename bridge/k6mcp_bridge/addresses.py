"""``HOST:PORT`` for the servers the bridge can start (``--listen``; the MCP plugin's ``--http``),
and what counts as loopback: only a loopback bind may go without a token."""

from __future__ import annotations

import ipaddress

from .errors import ConfigError


def parse_address(text: str, flag: str, example: str = "127.0.0.1:5000") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); port 0: any free
    one. ConfigError names ``flag`` and the ``example``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} {text!r}: expected HOST:PORT, e.g. {example}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
