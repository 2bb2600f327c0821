"""pytest fixtures for plugin authors (a ``pytest11`` entry point: active once k6mcp-bridge is
installed, e.g. with ``pip install 'k6mcp-bridge[test]'``).

* ``k6_sample``: the path of a bundled real k6 capture (``k6-run``, gzip);
* ``replay``: :func:`k6mcp_bridge.testing.replay`, ``replay(source, PluginClass, **options)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import replay as _replay
from . import sample


@pytest.fixture
def k6_sample() -> Path:
    """A real k6 v1.1.0 ``--out json`` capture (gzip), bundled with k6mcp-bridge."""
    return sample()


@pytest.fixture
def replay() -> Callable[..., tuple[Any, Any]]:
    """``replay(source, PluginClass, **options) -> (plugin, result)``: the real pipeline."""
    return _replay
