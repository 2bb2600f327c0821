"""Plugin discovery through real entry-point metadata, isolation, options and call order.

The plugins come from ``conftest.plugin_dir``: real modules with real ``.dist-info``
metadata, found by ``importlib.metadata`` in-process (``sys.path``) or by the console
script (``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import (
    BROKEN_DIST,
    BROKEN_MODULE,
    PLUGINS_DIST,
    PluginDir,
    bridge_exe,
    k6_stream,
    point_line,
    read_record,
    records,
    write_dist,
)
from k6mcp_bridge import Plugin
from k6mcp_bridge.cli import app
from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.registry import Option, build, discover

runner = CliRunner()


def run_bridge(
    plugins: PluginDir, *args: str, data: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [bridge_exe(), *args],
        input=data,
        capture_output=True,
        env=plugins.env(**env),
        timeout=60,
        check=False,
    )


# --- discovery ------------------------------------------------------------------------------------


def test_discover_finds_installed_plugins_with_their_distribution(
    installed_plugins: PluginDir,
) -> None:
    entries = discover()
    for name in ("recorder", "boom", "configured"):
        entry = entries[name]
        assert entry.error is None, entry.error
        assert entry.cls is not None
        assert issubclass(entry.cls, Plugin)
        assert entry.cls.name == name
        assert (entry.distribution, entry.version) == (PLUGINS_DIST, "0.1")
    assert entries["recorder"].target == "k6t_plugins:Recorder"
    assert entries["recorder"].description == "Records start, each batch and finish"
    for builtin in ("summary", "jsonl"):
        assert entries[builtin].distribution == "k6mcp-bridge"
        assert entries[builtin].cls is not None


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(
    installed_plugins: PluginDir, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge"):
        entries = discover()
    broken = entries["broken"]
    assert broken.cls is None
    assert broken.distribution == BROKEN_DIST
    assert broken.version == "0.2"
    assert broken.error is not None
    assert "ImportError" in broken.error
    assert "frobnicate" in broken.error
    assert entries["recorder"].cls is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert any("'broken'" in m and BROKEN_DIST in m for m in warnings), warnings


def test_an_entry_point_that_is_not_a_plugin_class_is_reported(
    installed_plugins: PluginDir,
) -> None:
    entry = discover()["notaplugin"]
    assert entry.cls is None
    assert entry.error is not None
    assert "not a k6mcp_bridge.Plugin subclass" in entry.error


def test_load_only_does_not_import_the_others(installed_plugins: PluginDir) -> None:
    entries = discover(frozenset({"recorder"}))
    assert BROKEN_MODULE not in sys.modules
    assert entries["recorder"].cls is not None
    assert entries["broken"].cls is None
    assert "K6MCP_BRIDGE_LOAD_PLUGINS" in (entries["broken"].error or "")
    assert entries["summary"].cls is None


def test_a_second_distribution_registering_a_taken_name_is_ignored(
    installed_plugins: PluginDir,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = tmp_path / "other-site"
    other.mkdir()
    write_dist(other, "k6t-impostor", "9.9", {}, {"recorder": "k6t_plugins:Boom"})
    monkeypatch.setattr(sys, "path", [*sys.path, str(other)])  # found after k6t-plugins
    importlib.invalidate_caches()
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge"):
        entries = discover()
    warnings = [r.getMessage() for r in caplog.records]
    assert any("'recorder'" in m and "k6t-impostor" in m and "ignored" in m for m in warnings), (
        warnings
    )
    assert entries["recorder"].distribution == PLUGINS_DIST
    assert entries["recorder"].cls is not None
    assert entries["recorder"].cls.name == "recorder"


# --- options --------------------------------------------------------------------------------------


def test_build_validates_options_into_the_config_model(installed_plugins: PluginDir) -> None:
    entry = discover()["configured"]
    plugin = build(entry, {"limit": Option("7", "option -o configured.limit")})
    assert plugin.config.limit == 7
    assert plugin.config.label == "plain"


def test_build_names_plugin_key_and_origin_of_a_bad_value(installed_plugins: PluginDir) -> None:
    entry = discover()["configured"]
    with pytest.raises(ConfigError) as raised:
        build(entry, {"limit": Option("many", "option -o configured.limit")})
    text = str(raised.value)
    assert "configured" in text
    assert "limit" in text
    assert "option -o configured.limit" in text


def test_build_rejects_an_unknown_option(installed_plugins: PluginDir) -> None:
    entry = discover()["configured"]
    with pytest.raises(ConfigError) as raised:
        build(entry, {"colour": Option("red", "f.ini [plugin.configured] colour")})
    assert "configured" in str(raised.value)
    assert "colour" in str(raised.value)
    assert "f.ini [plugin.configured]" in str(raised.value)


def test_a_plugin_without_config_rejects_any_option() -> None:
    entry = discover()["summary"]
    with pytest.raises(ConfigError) as raised:
        build(entry, {"width": Option("3", "option -o summary.width")})
    assert "summary" in str(raised.value)
    assert "width" in str(raised.value)


@pytest.mark.parametrize(
    ("option", "key"),
    [("configured.limit=lots", "limit"), ("configured.colour=red", "colour")],
)
def test_cli_bad_or_unknown_option_is_a_usage_error(
    installed_plugins: PluginDir, option: str, key: str
) -> None:
    result = runner.invoke(app, ["-p", "configured", "-o", option, "-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert "configured" in result.stderr
    assert key in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("line", "key"), [("limit = lots", "limit"), ("colour = red", "colour")])
def test_ini_bad_or_unknown_plugin_option_is_a_usage_error(
    installed_plugins: PluginDir, tmp_path: Path, line: str, key: str
) -> None:
    ini = tmp_path / "bridge.ini"
    ini.write_text(f"[plugins]\nenabled = configured\n\n[plugin.configured]\n{line}\n")
    result = runner.invoke(app, ["--config", str(ini), "-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert "configured" in result.stderr
    assert key in result.stderr
    assert str(ini) in result.stderr
    assert "[plugin.configured]" in result.stderr


def test_options_reach_the_plugin_and_o_overrides_the_ini(
    installed_plugins: PluginDir, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    ini = tmp_path / "bridge.ini"
    ini.write_text(
        f"[plugins]\nenabled = configured\n\n[plugin.configured]\n"
        f"limit = 3\nlabel = from-ini\nrecord = {record}\n"
    )
    result = runner.invoke(
        app, ["--config", str(ini), "-o", "configured.limit=9", "-"], input=k6_stream(1)
    )
    assert result.exit_code == 0, result.stderr
    finish = [e for e in read_record(record) if e["event"] == "finish"]
    assert finish == [{"plugin": "configured", "event": "finish", "limit": 9, "label": "from-ini"}]


# --- call order and batching ----------------------------------------------------------------------


def test_start_batches_finish_in_order_and_finish_once(
    installed_plugins: PluginDir, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    result = runner.invoke(
        app, ["-p", "recorder", "-o", f"recorder.record={record}", "-"], input=k6_stream(40)
    )
    assert result.exit_code == 0, result.stderr
    events = read_record(record)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "finish"
    assert kinds.count("start") == 1
    assert kinds.count("finish") == 1
    assert set(kinds[1:-1]) == {"batch"}
    keys = [k for e in events if e["event"] == "batch" for k in e["keys"]]
    assert keys == ["metric:m", *[float(i) for i in range(1, 41)]]
    assert events[-1] == {
        "plugin": "recorder",
        "event": "finish",
        "status": "completed",
        "messages": 41,
        "rejected": 0,
    }


@pytest.mark.parametrize("how", ["env", "ini"])
def test_batch_size_from_env_or_ini_limits_batches(
    installed_plugins: PluginDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    record = tmp_path / "record.jsonl"
    args = ["-p", "recorder", "-o", f"recorder.record={record}", "-"]
    if how == "env":
        monkeypatch.setenv("K6MCP_BRIDGE_BATCH_SIZE", "4")
    else:
        ini = tmp_path / "bridge.ini"
        ini.write_text("[bridge]\nbatch_size = 4\n")
        args = ["--config", str(ini), *args]
    result = runner.invoke(app, args, input=k6_stream(17))
    assert result.exit_code == 0, result.stderr
    batches = [e["keys"] for e in read_record(record) if e["event"] == "batch"]
    assert [k for b in batches for k in b] == ["metric:m", *[float(i) for i in range(1, 18)]]
    assert [len(b) for b in batches] == [4, 4, 4, 4, 2]


def test_finish_is_called_once_when_max_errors_stops_the_run(
    installed_plugins: PluginDir, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    bad = b'{"metric":"m","type":"Bogus","data":{}}\n'
    data = k6_stream(2) + bad + point_line(3) + b"\n"
    result = runner.invoke(
        app,
        ["-p", "recorder", "-o", f"recorder.record={record}", "--max-errors", "1", "-"],
        input=data,
    )
    assert result.exit_code == 65
    finishes = [e for e in read_record(record) if e["event"] == "finish"]
    assert len(finishes) == 1
    assert finishes[0]["status"] == "stopped"
    assert finishes[0]["rejected"] == 1


# --- isolation through the CLI --------------------------------------------------------------------


def test_a_raising_plugin_is_disabled_and_jsonl_still_gets_everything(
    installed_plugins: PluginDir, tmp_path: Path
) -> None:
    out, record = tmp_path / "out.jsonl", tmp_path / "boom.jsonl"
    args = ["-p", "boom", "-p", "jsonl", "-o", f"jsonl.path={out}", "-o", f"boom.record={record}"]
    result = runner.invoke(app, [*args, "-"], input=k6_stream(10))
    assert result.exit_code == 70, result.stderr  # output was lost: never a green run
    messages = records(out.read_text())
    assert len(messages) == 11
    assert [m["data"]["value"] for m in messages[1:]] == [float(i) for i in range(1, 11)]
    # the third point is message #4 (after the Metric message and points 1 and 2)
    assert "boom" in result.stderr
    assert "message #4" in result.stderr
    assert "boom on the third point" in result.stderr
    assert "disabled" in result.stderr
    events = read_record(record)
    assert [e["event"] for e in events] == ["start", "data", "data", "data", "finish"]
    assert events[-1]["status"] == "completed"


def test_fail_policy_exits_70_and_still_calls_finish(plugin_dir: PluginDir, tmp_path: Path) -> None:
    out, record = tmp_path / "out.jsonl", tmp_path / "boom.jsonl"
    proc = run_bridge(
        plugin_dir,
        "-p", "boom", "-p", "jsonl", "-o", f"jsonl.path={out}", "-o", f"boom.record={record}",
        "--plugin-errors", "fail", "-",
        data=k6_stream(10),
        K6MCP_BRIDGE_LOAD_PLUGINS="boom,jsonl,summary",
    )  # fmt: skip
    stderr = proc.stderr.decode()
    assert proc.returncode == 70, stderr
    assert "boom" in stderr
    assert "message #4" in stderr
    assert "Traceback" not in stderr
    events = read_record(record)
    assert events[-1]["event"] == "finish"
    assert events[-1]["status"] == "stopped"
    assert [e["event"] for e in events].count("finish") == 1


def test_fail_policy_from_the_environment(plugin_dir: PluginDir, tmp_path: Path) -> None:
    proc = run_bridge(
        plugin_dir, "-p", "boom", "-", data=k6_stream(5), K6MCP_BRIDGE_PLUGIN_ERRORS="fail"
    )
    assert proc.returncode == 70, proc.stderr.decode()


def test_a_broken_plugin_does_not_stop_the_run(plugin_dir: PluginDir, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = run_bridge(plugin_dir, "-p", "jsonl", "-o", f"jsonl.path={out}", "-", data=k6_stream(5))
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert len(records(out.read_text())) == 6
    assert "broken" not in stderr  # a run imports only the plugins it enables
    assert "Traceback" not in stderr
    listing = run_bridge(plugin_dir, "plugins", "--json", data=b"")
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert "frobnicate" in rows["broken"]["error"]  # `plugins` still says what is wrong


def test_enabling_a_broken_plugin_reports_it_and_the_others_carry_on(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = run_bridge(
        plugin_dir,
        "-p", "broken", "-p", "jsonl", "-o", f"jsonl.path={out}", "-",
        data=k6_stream(5),
    )  # fmt: skip
    stderr = proc.stderr.decode()
    assert len(records(out.read_text())) == 6
    assert "'broken'" in stderr
    assert BROKEN_DIST in stderr
    assert "frobnicate" in stderr


def test_load_plugins_excluding_the_broken_one_silences_it(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = run_bridge(
        plugin_dir, "-p", "jsonl", "-o", f"jsonl.path={out}", "-",
        data=k6_stream(5),
        K6MCP_BRIDGE_LOAD_PLUGINS="summary, jsonl",
    )  # fmt: skip
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert len(records(out.read_text())) == 6
    assert "broken" not in stderr
    assert "frobnicate" not in stderr
    assert "lines read" in stderr  # summary still loaded and enabled


def test_empty_load_plugins_loads_none(plugin_dir: PluginDir) -> None:
    proc = run_bridge(plugin_dir, "-", data=k6_stream(5), K6MCP_BRIDGE_LOAD_PLUGINS="")
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert "frobnicate" not in stderr
    assert "lines read" not in stderr  # not even the built-in summary ran
    assert proc.stdout == b""


# --- `plugins` listing ----------------------------------------------------------------------------


def test_plugins_listing_shows_load_errors_with_their_distribution(plugin_dir: PluginDir) -> None:
    proc = run_bridge(plugin_dir, "plugins")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = {line.split()[0]: line for line in proc.stdout.decode().splitlines()[1:] if line}
    for name in ("summary", "jsonl", "recorder", "boom", "configured", "broken"):
        assert name in rows, proc.stdout.decode()
    assert BROKEN_DIST in rows["broken"]
    assert "0.2" in rows["broken"]
    assert "ERROR" in rows["broken"]
    assert "frobnicate" in rows["broken"]
    assert PLUGINS_DIST in rows["recorder"]
    assert "Records start, each batch and finish" in rows["recorder"]


def test_plugins_json_lists_every_plugin(plugin_dir: PluginDir) -> None:
    proc = run_bridge(plugin_dir, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["broken"]["distribution"] == BROKEN_DIST
    assert rows["broken"]["version"] == "0.2"
    assert rows["broken"]["enabled"] is False
    assert "frobnicate" in rows["broken"]["error"]
    assert rows["recorder"]["error"] is None
    assert rows["recorder"]["distribution"] == PLUGINS_DIST
    assert rows["recorder"]["enabled"] is False
    assert rows["summary"]["enabled"] is True
    assert "not a k6mcp_bridge.Plugin subclass" in rows["notaplugin"]["error"]


def test_plugins_json_with_load_plugins_marks_the_others_not_loaded(plugin_dir: PluginDir) -> None:
    proc = run_bridge(plugin_dir, "plugins", "--json", K6MCP_BRIDGE_LOAD_PLUGINS="recorder")
    assert proc.returncode == 0
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["recorder"]["error"] is None
    assert "frobnicate" not in (rows["broken"]["error"] or "")
    assert "K6MCP_BRIDGE_LOAD_PLUGINS" in rows["broken"]["error"]
    assert rows["summary"]["enabled"] is False
