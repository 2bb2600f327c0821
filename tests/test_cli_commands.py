"""The ``k6mcp_bridge.commands`` entry-point group: commands from other installed packages.

Real distributions (``.dist-info`` with ``entry_points.txt``) on PYTHONPATH, found by
``importlib.metadata`` as pip-installed ones are, driven through the console script."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import typer

from conftest import bridge_exe, clean_env
from k6mcp_bridge.cli.commands import needed

_GOOD = '''
import typer


def register(app):
    @app.command("hello")
    def hello(name: str = "k6") -> None:
        """Say hello (a test command)."""
        typer.echo(f"hello {name}")
'''


def _dist(root: Path, dist: str, module: str, source: str, entries: dict[str, str]) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[k6mcp_bridge.commands]\n{lines}", encoding="utf-8")


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return subprocess.run(
        [bridge_exe(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(PYTHONPATH=os.pathsep.join(paths)),
    )


def test_a_command_package_adds_its_command_and_a_broken_one_one_warning(tmp_path: Path) -> None:
    _dist(tmp_path, "k6t-hello", "k6t_hello", _GOOD, {"hello": "k6t_hello:register"})
    broken = "raise ImportError('needs frob')\n"
    _dist(tmp_path, "k6t-badcmd", "k6t_badcmd", broken, {"bad": "k6t_badcmd:register"})
    _dist(tmp_path, "k6t-clash", "k6t_clash", _GOOD, {"runs": "k6t_clash:register"})

    shown = _run(tmp_path, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "hello" in shown.stdout and "Say hello" in shown.stdout
    warnings = [line for line in shown.stderr.splitlines() if line.strip()]
    assert len(warnings) == 2, shown.stderr
    assert any("'bad'" in w and "k6t-badcmd" in w and "needs frob" in w for w in warnings)
    assert any("'runs'" in w and "k6t-clash" in w and "taken" in w for w in warnings)
    assert "Traceback" not in shown.stderr

    said = _run(tmp_path, "hello", "--name", "you")
    assert said.returncode == 0 and said.stdout == "hello you\n"


def test_the_bridge_itself_never_scans_for_commands() -> None:
    app = typer.Typer()

    @app.command("runs")
    def runs() -> None: ...

    assert not needed([], app)  # stdin
    assert not needed(["-p", "store"], app)  # the bridge, run by default
    assert not needed(["runs", "--json"], app)  # a core command
    assert needed(["--help"], app) and needed(["mcp"], app) and needed(["results.json"], app)
