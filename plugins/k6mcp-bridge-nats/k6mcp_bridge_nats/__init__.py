"""k6mcp-bridge over NATS JetStream.

* :mod:`.publisher`: the ``nats`` plugin. Each runner's bridge publishes its cumulative run state
  (``docs/state-format.md``) to JetStream, every ``interval`` and at the end.
* :mod:`.merger`: :func:`~.merger.states_from_nats`, what ``k6mcp-bridge merge --nats`` reads: a
  durable consumer that waits until every instance has sent its final state.
* :mod:`.subjects`: the stream, its subjects and message ids.
* :mod:`.connection`: connection options (credentials, TLS).
"""

from __future__ import annotations

__version__ = "0.1.0"
