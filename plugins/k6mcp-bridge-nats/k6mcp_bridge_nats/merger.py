"""What ``k6mcp-bridge merge --nats URL --run NAME`` reads: every instance's newest state.

A durable pull consumer per run (:func:`~.subjects.durable_name`) on the run's subjects, which
starts at the last state of each instance (``DeliverPolicy.LAST_PER_SUBJECT``). States are
cumulative, so only each instance's newest matters, and the consumer's acknowledgements are
used for exactly that:

* a state older than (or as old as) the one held for its instance is acknowledged at once;
* the newest state of each instance is *held*: not acknowledged (``in_progress`` every few
  seconds keeps the server from sending it again), and acknowledged only when a newer one of
  the same instance arrives.

Killed with ``-9``, the merger leaves the held states unacknowledged: the server sends them
again after ``ACK_WAIT_S`` to the restarted merger, which so reaches the same result. At the
end the held states are given back (``nak``), so a later ``merge --nats`` of the same run gets
them at once.

Each time an instance's newer state arrives, ``on_states`` gets every instance's newest (``merge
--nats`` hands the merged run to its plugins, live). With ``on_windows``, every window of the run
(each instance's closed time buckets) goes there too, as it arrives, read from the start of the
stream (:mod:`.windows`); before it returns, the window stream is read to its end.

It finishes when ``instances`` instances (or, without it, every instance seen, once one second
passes with nothing new) have sent a final state. On timeout it raises :class:`MergeTimeout`
(exit 75) naming what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from k6mcp_bridge.aggregate.state import RunState
from k6mcp_bridge.errors import BridgeError, ExitStatus, SourceError
from k6mcp_bridge.messages import Window

from .connection import Credentials, connect_options, credentials_from_env
from .sender import ensure_streams
from .subjects import STREAM, durable_name, run_filter
from .windows import WindowReader, skipped

log = logging.getLogger("k6mcp_bridge.nats")

ACK_WAIT_S = 6.0
"""How long the server waits for the merger's word on a state before sending it again."""
HEARTBEAT_S = 2.0
FETCH_S = 1.0
DRAIN_S = 10.0
"""Once every final state is in, the window stream is read to its end, unless this long passes
without a window read."""


class MergeTimeout(BridgeError):
    """Not every instance sent its final state in time."""

    exit_status = ExitStatus.INCOMPLETE


def states_from_nats(
    url: str,
    run: str,
    instances: int | None = None,
    timeout: float = 600.0,
    credentials: Credentials | None = None,
    on_states: Callable[[list[RunState]], None] | None = None,
    on_windows: Callable[[list[Window]], None] | None = None,
) -> list[RunState]:
    """Each instance's newest state of ``run``, once they are all final (see the module).
    ``on_states`` is called with each instance's newest state every time one of them gets a
    newer one (the merged run, live); ``on_windows`` with the windows of the run as they come,
    each once."""
    credentials = credentials_from_env() if credentials is None else credentials
    options = connect_options(credentials)
    return asyncio.run(_collect(url, run, instances, timeout, options, on_states, on_windows))


async def _collect(
    url: str,
    run: str,
    instances: int | None,
    timeout: float,
    options: dict[str, Any],
    on_states: Callable[[list[RunState]], None] | None,
    on_windows: Callable[[list[Window]], None] | None = None,
) -> list[RunState]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    try:
        client = await nats.connect(
            url,
            connect_timeout=3,
            max_reconnect_attempts=3,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
            **options,
        )
    except Exception as exc:
        raise SourceError(f"cannot connect to NATS at {url}: {type(exc).__name__}: {exc}") from None
    # once connected, a broker that goes away is waited for until the timeout
    client.options["max_reconnect_attempts"] = -1
    held: dict[str, tuple[RunState, Any]] = {}
    reader: WindowReader | None = None
    following: asyncio.Task[None] | None = None
    try:
        js = client.jetstream()
        await ensure_streams(js)  # the merger may start before any runner
        if on_windows is not None:
            reader = WindowReader(js, run, on_windows, lambda name: _first_time(held, name))
            following = asyncio.get_running_loop().create_task(reader.follow())
        subscription = await js.pull_subscribe(
            run_filter(run),
            durable=durable_name(run),
            stream=STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_S,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            ),
        )
        deadline = time.monotonic() + timeout
        beat = time.monotonic() + HEARTBEAT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MergeTimeout(_missing(run, held, instances, timeout))
            try:
                messages = await subscription.fetch(64, timeout=min(FETCH_S, remaining))
            except Exception:  # nothing new (a timeout), or the broker is away: wait on
                messages = []
            newer = [await _take(message, held) for message in messages]
            if on_states is not None and any(newer):
                on_states([state for state, _ in held.values()])
            if reader is not None and any(newer):
                reader.release()  # the windows that waited for their instance's state
            if time.monotonic() >= beat:
                beat = time.monotonic() + HEARTBEAT_S
                for _, message in held.values():
                    await _safely(message.in_progress())
            if _complete(held, instances, quiet=not messages):
                break
        if reader is not None and following is not None:
            reader.stopped = True
            await following
            await _drain(reader, run)
        states = [state for state, _ in held.values()]
        if instances is not None and len(held) > instances:
            log.warning(
                "nats: %d instances sent states of run %r, more than --instances %d",
                len(held),
                run,
                instances,
            )
        return states
    finally:
        if following is not None and not following.done():
            following.cancel()
        for _, message in held.values():
            await _safely(message.nak())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 3.0)


def _first_time(held: dict[str, tuple[RunState, Any]], instance: str) -> datetime | None:
    known = held.get(instance)
    return None if known is None else known[0].first_time


async def _drain(reader: WindowReader, run: str) -> None:
    if await reader.drain(DRAIN_S):
        notes = [
            f"{reader.duplicates} sent twice, counted once" if reader.duplicates else "",
            f"{reader.earlier} of an earlier run of that name left out" if reader.earlier else "",
            f"{reader.unplaced} of instances without a state left out" if reader.unplaced else "",
        ]
        said = "; ".join(note for note in notes if note)
        log.info("nats: %d windows of run %r%s", reader.windows, run, f" ({said})" if said else "")
    else:
        log.warning(
            "nats: the windows of run %r could not be read to the end (%d read): the merged "
            "run's time buckets may miss some (its numbers and verdicts do not)",
            run,
            reader.windows,
        )


async def _take(message: Any, held: dict[str, tuple[RunState, Any]]) -> bool:
    """Hold ``message``'s state if it is its instance's newest: True if it is newer than the
    one held before."""
    try:
        state = RunState.model_validate_json(message.data)
    except ValidationError as exc:
        skipped(message.subject, "state", exc)
        await _safely(message.term())
        return False
    known = held.get(state.instance)
    if known is None or state.seq > known[0].seq:
        held[state.instance] = (state, message)
        if known is not None:
            await _safely(known[1].ack())
        return True
    if state.seq == known[0].seq:
        held[state.instance] = (state, message)  # sent again: hold this delivery
    else:
        await _safely(message.ack())  # older than what we hold
    return False


def _complete(held: dict[str, tuple[RunState, Any]], instances: int | None, *, quiet: bool) -> bool:
    finals = sum(state.final for state, _ in held.values())
    if instances is not None:
        return finals >= instances
    return bool(held) and finals == len(held) and quiet


def _missing(
    run: str, held: dict[str, tuple[RunState, Any]], instances: int | None, timeout: float
) -> str:
    final = sorted(name for name, (state, _) in held.items() if state.final)
    running = sorted(name for name, (state, _) in held.items() if not state.final)
    head = f"timed out after {timeout:g} s waiting for the final states of run {run!r}"
    if not held:
        return f"{head}: no state arrived (subject {run_filter(run)} on stream {STREAM})"
    seen = (
        f"final: {', '.join(final) or 'none'}; "
        f"not final (still running, or cut short): {', '.join(running) or 'none'}"
    )
    if instances is None:
        return f"{head}: missing the final state of {', '.join(running)} ({seen})"
    lacking = instances - len(final)
    never = max(instances - len(held), 0)
    return (
        f"{head}: {lacking} of {instances} instances have not sent a final state"
        f"{f' ({never} never sent any)' if never else ''}; {seen}"
    )


async def _safely(call: Any) -> None:
    try:
        await call
    except Exception as exc:
        log.debug("nats: %s", exc)


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)
