"""k6mcp-bridge-mcp: an MCP server over the k6mcp-bridge run store (``k6mcp-bridge mcp``).

``tools`` (the tools as pure functions over a ``Store``), ``server`` (the MCP server: tools,
resources, prompt), ``follow`` (``--follow``: the follow pipeline on a thread), ``http``
(``--http``: streamable HTTP with the Origin check and the bearer token), ``cli`` (the command,
registered through the ``k6mcp_bridge.commands`` entry-point group).
"""

__version__ = "0.1.0"
