"""The ``K6MCP_BRIDGE_*`` environment variables the bridge reads by name (every setting also has
one: see :mod:`.config`). Kept apart from the settings model so that the store's read side
needs no pydantic at start-up."""

ENV_PREFIX = "K6MCP_BRIDGE_"
ENV_CONFIG = ENV_PREFIX + "CONFIG"
"""The config file's path."""
ENV_LOAD_PLUGINS = ENV_PREFIX + "LOAD_PLUGINS"
"""The plugins allowed to load (comma-separated)."""
ENV_STORE = ENV_PREFIX + "STORE"
"""The run store's path (read by the ``store`` plugin and the ``runs``/``query`` commands)."""
