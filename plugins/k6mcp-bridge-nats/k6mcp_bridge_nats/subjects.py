"""Where states go: one JetStream stream, one subject per run and instance.

Subject: ``k6mcp.state.v1.<run>.<instance>``. ``v1`` is the state format's version
(``docs/state-format.md``): a reader of another version ignores these subjects. A NATS subject
token cannot hold ``.`` (a token separator: Kubernetes names have dots), ``*``, ``>`` or
whitespace, so each name is escaped: every byte other than ``A-Z a-z 0-9 - _`` becomes
``%HH`` (``%`` included, so two names never share a token: ``a.b`` → ``a%2Eb``, ``a_b`` stays).
"""

from __future__ import annotations

import hashlib

STREAM = "K6MCP_STATES"
"""The stream every state goes to (created by the first publisher that finds it missing)."""
PREFIX = "k6mcp.state.v1"
SUBJECTS = f"{PREFIX}.>"
MAX_PER_SUBJECT = 16
"""States kept per run and instance: they are cumulative, the newest is what counts."""

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def token(name: str) -> str:
    """``name`` as one subject token (see the module's docstring); never empty."""
    if not name:
        return "%"
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in name.encode("utf-8"))


def untoken(text: str) -> str:
    """The name a :func:`token` holds."""
    if text == "%":
        return ""
    out = bytearray()
    index = 0
    while index < len(text):
        if text[index] == "%":
            out.append(int(text[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(ord(text[index]))
            index += 1
    return out.decode("utf-8")


def subject(run: str, instance: str) -> str:
    return f"{PREFIX}.{token(run)}.{token(instance)}"


def run_filter(run: str) -> str:
    """Every instance's subject of ``run``."""
    return f"{PREFIX}.{token(run)}.*"


def message_id(run: str, instance: str, seq: int) -> str:
    """``Nats-Msg-Id``: the server drops a second message with the same id (its duplicate
    window, 2 minutes by default); an older state arriving late is dropped by the merger."""
    return f"{run}.{instance}.{seq}"


def durable_name(run: str) -> str:
    """The merger's durable consumer of ``run`` (a consumer name has no dots either: a digest
    keeps it short and valid whatever the run is called)."""
    digest = hashlib.sha256(run.encode("utf-8")).hexdigest()[:16]
    return f"k6mcp-merge-{digest}"
