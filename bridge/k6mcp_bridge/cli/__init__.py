"""The command line: ``k6mcp-bridge [run] [SOURCE]``, ``plugins``, ``schema``, ``runs``, ``query``.

The only package that imports typer, and the only place that turns outcomes into exit codes:
``app`` (the typer app, logging), ``run`` (the main command), ``settings`` (flags, variables and
the config file into settings and plugin instances), ``info`` (``plugins``, ``schema``),
``store_commands`` (``runs``, ``query`` over the run store), ``commands`` (commands from other
packages: the ``k6mcp_bridge.commands`` entry-point group, loaded by ``main``).
"""

from . import info, run, store_commands
from .app import app, main

__all__ = ["app", "info", "main", "run", "store_commands"]
