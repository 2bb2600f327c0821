"""``k6mcp-bridge plugins new NAME [--dir DIR]``: a new plugin package, ready to pip install.

``DIR/NAME`` gets a ``pyproject.toml`` (the ``k6mcp_bridge.plugins`` entry point ``NAME``), one
module with a ``Config`` model and a ``process_batch``, a README, and a test that replays the
bundled real k6 capture through the real pipeline (``k6mcp_bridge.testing``).
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Annotated

import typer

from .app import log, setup_logging
from .info import plugins_app

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
"""A PEP 503 normalised name whose module name (``-`` as ``_``) is a Python identifier."""

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "A k6mcp-bridge plugin"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["k6mcp-bridge"]

[project.optional-dependencies]
test = ["k6mcp-bridge[test]"]

[project.entry-points."k6mcp_bridge.plugins"]
{name} = "{module}:{cls}"

[tool.setuptools]
py-modules = ["{module}"]
"""

_MODULE = '''\
"""{name}: a k6mcp-bridge plugin. Counts the points of one metric above a limit."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pydantic import BaseModel

from k6mcp_bridge import Message, Plugin, RunResult


class Config(BaseModel):
    """Options: ``-o {name}.metric=http_req_duration -o {name}.limit=500``."""

    metric: str = "http_req_duration"
    limit: float = 500.0


class {cls}(Plugin):
    name = "{name}"
    description = "Counts the points of a metric above a limit"
    Config = Config
    config: Config
    accepts = frozenset({{"point"}})
    above = 0
    points = 0

    def process_batch(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.type == "point" and message.data.metric == self.config.metric:
                self.points += 1
                self.above += message.data.value > self.config.limit

    def finish(self, result: RunResult) -> None:
        print(
            f"{name}: {{self.above}} of {{self.points}} {{self.config.metric}} points "
            f"above {{self.config.limit}}",
            file=sys.stderr,
        )
'''

_TEST = """\
from k6mcp_bridge.testing import replay
from {module} import {cls}


def test_counts_points_above_the_limit():
    plugin, result = replay("k6-run", {cls}, limit=0)
    assert result.status == "completed"
    assert plugin.above == plugin.points > 0


def test_a_high_limit_counts_none():
    plugin, _ = replay("k6-run", {cls}, limit=1e12)
    assert plugin.above == 0 and plugin.points > 0
"""

_README = """\
# {name}

A [k6mcp-bridge](https://pypi.org/project/k6mcp-bridge/) plugin: counts the points of one
metric (default `http_req_duration`) above a limit (default 500).

```
pip install .
k6mcp-bridge plugins                      # lists {name}
k6mcp-bridge results.json -p {name} -o {name}.limit=200
```

Test it (the test replays a real k6 capture bundled with k6mcp-bridge through its pipeline):

```
pip install '.[test]' && pytest
```
"""


@plugins_app.command("new")
def new(
    name: Annotated[
        str, typer.Argument(help="The plugin's name (a package name, e.g. slow-requests).")
    ],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write NAME/ (default: the current directory).")
    ] = Path("."),
) -> None:
    """Write a new plugin package into DIR/NAME: pyproject.toml, module, README, test."""
    setup_logging("INFO")
    module = name.replace("-", "_")
    if not _NAME.match(name) or keyword.iskeyword(module) or module == "k6mcp_bridge":
        log.error(
            "%r is not a plugin name: lower-case letters and digits, words joined by - or _, "
            "starting with a letter (e.g. slow-requests)",
            name,
        )
        raise typer.Exit(2)
    target = directory / name
    if target.exists():
        log.error("%s already exists: not overwriting it", target)
        raise typer.Exit(2)
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Plugin"
    values = {"name": name, "module": module, "cls": cls}
    files = {
        "pyproject.toml": _PYPROJECT,
        f"{module}.py": _MODULE,
        "README.md": _README,
        f"tests/test_{module}.py": _TEST,
    }
    try:
        (target / "tests").mkdir(parents=True)
        for relative, template in files.items():
            (target / relative).write_text(template.format(**values), encoding="utf-8")
    except OSError as exc:
        log.error("cannot write %s: %s", target, exc)
        raise typer.Exit(2) from None
    log.info("wrote %s: pip install ./%s, then pytest in it", target, name)
