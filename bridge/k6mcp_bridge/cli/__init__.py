"""The command line: ``k6mcp-bridge [run] [SOURCE]``, ``plugins``, ``schema``, ``runs``, ``query``,
``report``, ``merge``.

The only package that imports typer, and the only place that turns outcomes into exit codes:
``app`` (the typer app, logging), ``run`` (the main command), ``exec`` (k6 started by the
bridge), ``settings`` (flags, variables and
the config file into settings and plugin instances), ``info`` (``plugins``, ``schema``),
``store_commands`` (``runs``, ``query``, ``report`` over the run store), ``merge`` (runners'
states into one run), ``commands`` (commands from other packages: the ``k6mcp_bridge.commands``
entry-point group, loaded by ``main``).
"""

from . import exec, info, merge, new_plugin, run, store_commands
from .app import app, main

__all__ = ["app", "exec", "info", "main", "merge", "new_plugin", "run", "store_commands"]
