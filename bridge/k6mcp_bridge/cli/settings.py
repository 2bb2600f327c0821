"""Flags, ``K6MCP_BRIDGE_*`` variables and the config file into settings and plugin instances."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Layered, Settings, config_path, load_only, read_env, read_file, validate
from ..errors import ConfigError
from ..plugin import Plugin
from ..registry import Option, build, discover

log = logging.getLogger("k6mcp_bridge")


def settings_from(
    config: Path | None,
    flags: dict[str, Any],
    option_args: list[str],
    metric_types: Sequence[str] = (),
) -> tuple[Settings, dict[str, dict[str, Option]]]:
    layers = Layered()
    path = config_path(config, os.environ)
    if path is not None:
        read_file(path, layers)
    read_env(os.environ, layers)
    for name, value in flags.items():
        if value is not None:
            layers.set(name, value, f"option --{name.replace('_', '-')}")
    for text in metric_types:
        name, sep, kind = text.partition("=")
        if not (sep and name):
            raise ConfigError(f"--metric-type {text!r}: expected NAME=counter|gauge|rate|trend")
        layers.set_entry("metric_types", name, kind, f"option --metric-type {name}")
    for text in option_args:
        target, sep, value = text.partition("=")
        plugin, dot, key = target.partition(".")
        if not (sep and dot and plugin and key):
            raise ConfigError(f"-o {text!r}: expected NAME.KEY=VALUE, e.g. -o jsonl.path=out.jsonl")
        layers.set_option(plugin, key, value, f"option -o {target}")
    return validate(layers), layers.plugin_options


def enabled_plugins(settings: Settings, options: dict[str, dict[str, Option]]) -> list[Plugin]:
    entries = discover(load_only(os.environ), wanted=settings.plugins)
    for name, plugin_options in options.items():
        flagged = [k for k, o in plugin_options.items() if o.origin.startswith("option -o")]
        if flagged and name not in settings.plugins:
            raise ConfigError(
                f"-o {name}.{flagged[0]} is set but plugin {name!r} is not enabled (add -p {name})"
            )
    plugins = []
    for name in settings.plugins:
        entry = entries.get(name)
        if entry is None:
            installed = ", ".join(sorted(entries)) or "none"
            raise ConfigError(f"unknown plugin {name!r} (installed: {installed})")
        if entry.cls is None:
            log.warning(
                "plugin %r (%s) is enabled but skipped: %s", name, entry.distribution, entry.error
            )
            continue
        try:
            plugins.append(build(entry, options.get(name, {})))
        except ConfigError:
            raise
        except Exception as exc:  # its __init__ failed: report it, the others carry on
            log.error(
                "plugin %r (%s %s) failed to start: %s: %s; the others carry on",
                name,
                entry.distribution,
                entry.version,
                type(exc).__name__,
                exc,
            )
    return plugins
