"""Where states and windows go: two JetStream streams, one subject per run and instance in each.

States: ``k6mcp.state.v1.<run>.<instance>`` on ``K6MCP_STATES`` (the newest few kept: they are
cumulative). Windows: ``k6mcp.window.v1.<run>.<instance>`` on ``K6MCP_WINDOWS`` (every one kept:
each holds one bucket's samples). ``v1`` is the format's version (``docs/state-format.md``): a
reader of another version ignores these subjects. A NATS subject
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
WINDOW_STREAM = "K6MCP_WINDOWS"
"""The stream every closed window goes to (all kept, for a merger that starts over)."""
WINDOW_PREFIX = "k6mcp.window.v1"
WINDOW_SUBJECTS = f"{WINDOW_PREFIX}.>"
WINDOW_MAX_AGE_S = 7 * 24 * 3600.0
"""Windows older than a week are dropped by the server (a run's merge is done by then)."""

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


def subject(run: str, instance: str, prefix: str = PREFIX) -> str:
    """The subject of ``instance``'s states of ``run`` (its windows: ``WINDOW_PREFIX``)."""
    return f"{prefix}.{token(run)}.{token(instance)}"


def run_filter(run: str, prefix: str = PREFIX) -> str:
    """Every instance's subject of ``run``."""
    return f"{prefix}.{token(run)}.*"


def message_id(run: str, instance: str, seq: int) -> str:
    """``Nats-Msg-Id``: the server drops a second message with the same id (its duplicate
    window, 2 minutes by default); an older state arriving late is dropped by the merger."""
    return f"{run}.{instance}.{seq}"


def window_id(run: str, instance: str, session: int, number: int, start: int) -> str:
    """A window's ``Nats-Msg-Id``: ``run.instance.w<session>.<number>.<start>``, where
    ``session`` is the publishing bridge's start (milliseconds since the epoch: a bridge
    restarted from its checkpoint numbers its windows again from 0 without reusing an id) and
    ``number`` counts its windows; ``start`` (the bucket's, in seconds) is there for people."""
    return f"{run}.{instance}.w{session}.{number}.{start}"


def durable_name(run: str) -> str:
    """The merger's durable consumer of ``run`` (a consumer name has no dots either: a digest
    keeps it short and valid whatever the run is called)."""
    digest = hashlib.sha256(run.encode("utf-8")).hexdigest()[:16]
    return f"k6mcp-merge-{digest}"
