"""k6mcp-bridge over NATS JetStream.

* :mod:`.publisher`: the ``nats`` plugin. Each runner's bridge publishes its cumulative run state
  (``docs/state-format.md``) to JetStream, every ``interval`` and at the end, and every closed
  window as it comes; :mod:`.sender` is its background thread.
* :mod:`.merger`: :func:`~.merger.states_from_nats`, what ``k6mcp-bridge merge --nats`` reads: a
  durable consumer that waits until every instance has sent its final state, and
  (:mod:`.windows`) the run's windows for the merger's plugins.
* :mod:`.subjects`: the streams, their subjects and message ids.
* :mod:`.connection`: connection options (credentials, TLS).
"""

from __future__ import annotations

__version__ = "0.1.0"
