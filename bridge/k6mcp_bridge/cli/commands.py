"""Commands from other packages: the ``k6mcp_bridge.commands`` entry-point group.

Each entry point names a callable that takes the typer app and registers its command(s) on it
(``app.command("mcp")(fn)``, or ``app.add_typer(sub, name=...)``)::

    [project.entry-points."k6mcp_bridge.commands"]
    mcp = "k6mcp_bridge_mcp.cli:register"

They are loaded before the command line is parsed (unless it starts with a core command or an
option: see :func:`needed`), so the module an entry point names should import little (typer
only) and import its heavy dependencies inside the command. A package that fails to load, or
that registers a name the core already has, gives one warning line on stderr and is left out;
the other commands work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

import typer

GROUP = "k6mcp_bridge.commands"


def needed(argv: Sequence[str], app: typer.Typer) -> bool:
    """Whether the command line may name a command from another package: not when it starts
    with a core command or an option (``k6mcp-bridge -p store`` runs the bridge), nor when it
    is empty (stdin), so the bridge itself never pays for scanning the installed packages."""
    if not argv:
        return False
    first = argv[0]
    if first in ("--help", "--version"):
        return True
    return not (first.startswith("-") or first in _names(app))


def load_commands(app: typer.Typer) -> list[str]:
    """Register every installed command package's commands on ``app``; their names."""
    loaded = []
    taken = _names(app)
    for point in entry_points(group=GROUP):
        dist = point.dist.name if point.dist is not None else "?"
        if point.name in taken:
            _warn(f"command {point.name!r} from {dist} is ignored: that name is taken")
            continue
        commands, groups = len(app.registered_commands), len(app.registered_groups)
        try:
            register = point.load()
            register(app)
        except Exception as exc:  # a broken package must never break the bridge
            del app.registered_commands[commands:]  # whatever it half-registered
            del app.registered_groups[groups:]
            _warn(
                f"command {point.name!r} ({dist}) failed to load: {type(exc).__name__}: {exc}; "
                f"reinstall or uninstall {dist}"
            )
            continue
        loaded.append(point.name)
        taken = _names(app)
    return loaded


def _names(app: typer.Typer) -> set[str]:
    names = {
        command.name or (command.callback.__name__ if command.callback else "")
        for command in app.registered_commands
    }
    names |= {group.name or "" for group in app.registered_groups}
    return {name.replace("_", "-") for name in names} | names


def _warn(text: str) -> None:
    print(f"k6mcp-bridge: warning: {text}", file=sys.stderr)
