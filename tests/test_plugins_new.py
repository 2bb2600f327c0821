"""``k6mcp-bridge plugins new NAME``: the package it writes installs, passes its own test, and
is listed by ``k6mcp-bridge plugins``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bridge_exe, clean_env

TIMEOUT_S = 180


def bridge(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bridge_exe(), *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_new_demo_installs_passes_its_test_and_is_listed(tmp_path: Path) -> None:
    made = bridge("plugins", "new", "demo", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    demo = tmp_path / "demo"
    assert {p.name for p in demo.iterdir()} == {"pyproject.toml", "demo.py", "README.md", "tests"}

    site = tmp_path / "site"  # a real pip install, of the package alone, beside this venv's
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            "./demo",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=demo,
        env=clean_env(PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "2 passed" in tested.stdout

    listing = bridge("plugins", "--json", cwd=tmp_path, PYTHONPATH=str(site))
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["demo"]["distribution"] == "demo" and rows["demo"]["error"] is None
    assert rows["demo"]["accepts"] == ["point"]
    run = bridge("--help", cwd=tmp_path)  # the old listing command still is the default
    assert run.returncode == 0


@pytest.mark.parametrize("name", ["1demo", "Demo", "de mo", "import", "demo-", "k6mcp_bridge"])
def test_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    made = bridge("plugins", "new", name, cwd=tmp_path)
    assert made.returncode == 2 and "is not a plugin name" in made.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out" / "demo").mkdir(parents=True)
    made = bridge("plugins", "new", "demo", "--dir", str(tmp_path / "out"), cwd=tmp_path)
    assert made.returncode == 2 and "already exists" in made.stderr
    assert list((tmp_path / "out" / "demo").iterdir()) == []


def test_version_and_shell_completion_are_the_apps_own_options(tmp_path: Path) -> None:
    version = bridge("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("k6mcp-bridge ")
    shown = bridge("--show-completion", "bash", cwd=tmp_path)
    assert shown.returncode == 0 and "_K6MCP_BRIDGE_COMPLETE" in shown.stdout, shown.stderr
