"""k6's REST API (``k6 run --address HOST:PORT``, on 6565 by default): stop a running test, as
``k6 stop`` does. A k6 stopped so ends its test (no more iterations, teardown, summary, the end of
its output) and exits 103 (checked with k6 v1.1.0)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence

log = logging.getLogger("k6mcp_bridge")

STOP = {"data": {"type": "status", "id": "default", "attributes": {"stopped": True}}}
TIMEOUT_S = 3.0


def stop_runner(address: str, timeout: float = TIMEOUT_S) -> str | None:
    """``PATCH address/v1/status`` with ``stopped: true``; None once k6 took it, else why not."""
    base = address if "://" in address else f"http://{address}"
    request = urllib.request.Request(
        base.rstrip("/") + "/v1/status",
        data=json.dumps(STOP).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, a bad address
        return str(getattr(exc, "reason", None) or exc)
    return None


def stop_runners(addresses: Sequence[str]) -> int:
    """Stop every runner; each one is logged. How many took it."""
    stopped = 0
    for address in addresses:
        problem = stop_runner(address)
        if problem is None:
            stopped += 1
            log.warning("stopped the k6 runner at %s (through its REST API)", address)
        else:
            log.error("cannot stop the k6 runner at %s: %s", address, problem)
    return stopped
