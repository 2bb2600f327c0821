"""The README's promises, checked: the plugin example works and the hook headings are exact."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import K6_RUN, ROOT, PluginDir, bridge_exe, write_dist
from k6mcp_bridge.plugin import Plugin

README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced(language: str, after: str) -> str:
    """The first ``language`` code block after the text ``after``."""
    start = README.index(after)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.DOTALL)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_the_readme_plugin_is_short_and_works_once_installed(tmp_path: Path) -> None:
    source = fenced("python", "### Writing a plugin")
    code_lines = [line for line in source.splitlines() if line.strip()]
    assert len(code_lines) < 20
    toml = fenced("toml", "### Writing a plugin")
    entry_points = toml[toml.index('[project.entry-points."k6mcp_bridge.plugins"]') :]
    target = re.search(r'^(\S+) = "(\S+)"$', entry_points, re.MULTILINE)
    assert target, toml
    name, entry = target.groups()
    write_dist(tmp_path, "k6mcp-slow-requests", "0.1.0", {"slow_requests": source}, {name: entry})

    env = PluginDir(tmp_path).env()
    listing = subprocess.run(
        [bridge_exe(), "plugins", "--json"], env=env, capture_output=True, timeout=60, check=True
    )
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows[name]["distribution"] == "k6mcp-slow-requests" and rows[name]["error"] is None

    durations = [
        json.loads(line)["data"]["value"]
        for line in K6_RUN.read_text(encoding="utf-8").splitlines()
        if '"metric":"http_req_duration","type":"Point"' in line
    ]
    limit = sorted(durations)[len(durations) // 2]
    run = subprocess.run(
        [bridge_exe(), str(K6_RUN), "-p", name, "-o", f"{name}.limit_ms={limit}"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    slow = sum(value > limit for value in durations)
    assert f"{slow} requests slower than {limit} ms" in run.stdout.decode()


def test_each_hook_heading_is_the_exact_signature() -> None:
    headings = dict(re.findall(r"^#### `(\w+)(\(.*\) -> None)`$", README, re.MULTILINE))
    assert set(headings) == {"start", "process_batch", "process_data", "finish"}
    for name, signature in headings.items():
        actual = str(inspect.signature(getattr(Plugin, name))).replace("'", "")
        assert actual == signature, f"README says {name}{signature}, code says {name}{actual}"


def test_the_readme_config_file_is_valid_and_does_what_it_says(tmp_path: Path) -> None:
    config = tmp_path / "bridge.ini"
    config.write_text(fenced("ini", "## Configuration"), encoding="utf-8")
    run = subprocess.run(
        [bridge_exe(), "--config", str(config), str(K6_RUN)],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = run.stderr.decode()
    assert "bad value" not in stderr and "unknown" not in stderr, stderr[-2000:]
    # the sample's checks pass at 90%: the example's `checks:rate>0.99` fails, as in k6
    assert run.returncode == 99, stderr[-2000:]
    assert "✗ 'rate>0.99'" in stderr
    exported = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert exported["metrics"]["checks"]["thresholds"] == {"rate>0.99": True, "rate>0.5": False}
    assert (tmp_path / "messages.jsonl").stat().st_size > 0


def test_the_readme_plugin_test_is_three_lines_and_passes_under_pytest(tmp_path: Path) -> None:
    """The README's test of its plugin, run by pytest in a subprocess (the pytest plugin's
    entry point loads as it does for a plugin author)."""
    test = fenced("python", "### Testing a plugin")
    body = test[test.index("def test_") :].splitlines()[1:]
    assert len([line for line in body if line.strip()]) + 1 <= 3  # the import of replay aside
    (tmp_path / "slow_requests.py").write_text(fenced("python", "### Writing a plugin"))
    (tmp_path / "test_slow_requests.py").write_text(test, encoding="utf-8")

    def pytest_in_tmp(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=tmp_path,
            env=PluginDir(tmp_path).env(),
            capture_output=True,
            timeout=120,
            check=False,
        )

    run = pytest_in_tmp("--fixtures")
    assert "k6_sample" in run.stdout.decode() and "replay" in run.stdout.decode()
    run = pytest_in_tmp("test_slow_requests.py")
    assert run.returncode == 0, run.stdout.decode()[-3000:]
    assert "1 passed" in run.stdout.decode()
