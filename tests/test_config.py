"""Settings: one .ini file, then K6MCP_BRIDGE_* variables, then flags; every key validated."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import bridge_exe, clean_env, k6_stream, records
from k6mcp_bridge.cli import app
from k6mcp_bridge.config import Layered, Settings, read_env, read_file, validate
from k6mcp_bridge.errors import ConfigError

runner = CliRunner()
CONSOLE = b"     execution: local\n"
BAD = b'{"metric":"m","type":"Bogus","data":{}}\n'


def ini(tmp_path: Path, text: str, name: str = "bridge.ini") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_from(path: Path | None = None, env: dict[str, str] | None = None) -> Layered:
    layers = Layered()
    if path is not None:
        read_file(path, layers)
    read_env(env or {}, layers)
    return layers


# --- the file -------------------------------------------------------------------------------------


def test_every_section_of_the_file_is_read(tmp_path: Path) -> None:
    path = ini(
        tmp_path,
        """
[bridge]
passthrough = false
dead_letter = rejected.txt
max_errors = 3
plugin_errors = fail
batch_size = 50
batch_wait = 0.5

[logging]
level = debug

[plugins]
enabled = summary, jsonl

[plugin.jsonl]
path = out.jsonl
""",
    )
    layers = settings_from(path)
    settings = validate(layers)
    assert settings == Settings(
        passthrough=False,
        dead_letter=Path("rejected.txt"),
        max_errors=3,
        plugin_errors="fail",
        batch_size=50,
        batch_wait=0.5,
        log_level="DEBUG",
        plugins=["summary", "jsonl"],
    )
    option = layers.plugin_options["jsonl"]["path"]
    assert option.value == "out.jsonl"
    assert str(path) in option.origin
    assert "[plugin.jsonl]" in option.origin


def test_defaults_without_any_file_or_variable() -> None:
    settings = validate(settings_from())
    assert settings == Settings()
    assert settings.plugins == ["summary"]
    assert settings.passthrough is True
    assert settings.plugin_errors == "disable"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = ini(tmp_path, "[bridge]\nmax_errors = 5\nbatch_size = 9\n[plugins]\nenabled = jsonl\n")
    env = {"K6MCP_BRIDGE_MAX_ERRORS": "2", "K6MCP_BRIDGE_PLUGINS": "summary,jsonl"}
    settings = validate(settings_from(path, env))
    assert settings.max_errors == 2
    assert settings.batch_size == 9  # not overridden
    assert settings.plugins == ["summary", "jsonl"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[colours]\nred = 1\n", ["[colours]"]),
        ("[bridge]\ncolour = red\n", ["[bridge]", "colour"]),
        ("[logging]\nformat = json\n", ["[logging]", "format"]),
        ("[plugins]\ndisabled = summary\n", ["[plugins]", "disabled"]),
        ("[bridge]\nmax_errors = lots\n", ["[bridge]", "max_errors"]),
        ("[bridge]\nmax_errors = 0\n", ["[bridge]", "max_errors"]),
        ("[bridge]\npassthrough = perhaps\n", ["[bridge]", "passthrough"]),
        ("[bridge]\nplugin_errors = explode\n", ["[bridge]", "plugin_errors"]),
        ("[bridge]\nbatch_wait = -1\n", ["[bridge]", "batch_wait"]),
        ("[logging]\nlevel = LOUD\n", ["[logging]", "level"]),
        ("no section header\n", []),
    ],
)
def test_a_bad_file_names_file_section_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = ini(tmp_path, text)
    result = runner.invoke(app, ["--config", str(path), "-"], input=k6_stream(1))
    assert result.exit_code == 2, result.stderr
    for word in [str(path), *words]:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ini"
    result = runner.invoke(app, ["--config", str(missing), "-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert str(missing) in result.stderr


# --- the environment ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("K6MCP_BRIDGE_MAX_ERRORS", "lots"),
        ("K6MCP_BRIDGE_PASSTHROUGH", "perhaps"),
        ("K6MCP_BRIDGE_PLUGIN_ERRORS", "explode"),
        ("K6MCP_BRIDGE_BATCH_SIZE", "0"),
        ("K6MCP_BRIDGE_COLOUR", "red"),
    ],
)
def test_a_bad_environment_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    result = runner.invoke(app, ["-"], input=k6_stream(1))
    assert result.exit_code == 2, result.stderr
    assert var in result.stderr
    assert "Traceback" not in result.stderr


def test_read_env_ignores_other_variables() -> None:
    layers = settings_from(env={"PATH": "/bin", "K6_OUT": "json", "K6MCP_BRIDGEX": "1"})
    assert layers.values == {}


def test_a_bad_environment_value_is_named_by_validate() -> None:
    with pytest.raises(ConfigError) as raised:
        validate(settings_from(env={"K6MCP_BRIDGE_BATCH_WAIT": "soon"}))
    assert "K6MCP_BRIDGE_BATCH_WAIT" in str(raised.value)
    assert "batch_wait" in str(raised.value)


def test_k6mcp_bridge_config_points_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    path = ini(tmp_path, f"[plugins]\nenabled = jsonl\n[plugin.jsonl]\npath = {out}\n")
    monkeypatch.setenv("K6MCP_BRIDGE_CONFIG", str(path))
    result = runner.invoke(app, ["-"], input=k6_stream(3))
    assert result.exit_code == 0, result.stderr
    assert len(records(out.read_text())) == 4
    assert "lines read" not in result.stderr  # summary is not in this file's enabled list


def test_config_flag_wins_over_k6mcp_bridge_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = ini(tmp_path, "[bridge]\ncolour = red\n", "env.ini")  # would be an error
    flag_file = ini(tmp_path, "[bridge]\nmax_errors = 4\n", "flag.ini")
    monkeypatch.setenv("K6MCP_BRIDGE_CONFIG", str(env_file))
    result = runner.invoke(app, ["--config", str(flag_file), "-"], input=k6_stream(1))
    assert result.exit_code == 0, result.stderr


def test_k6mcp_bridge_config_naming_a_missing_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K6MCP_BRIDGE_CONFIG", str(tmp_path / "gone.ini"))
    result = runner.invoke(app, ["-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert "gone.ini" in result.stderr


# --- flags over env over file, seen through behaviour ---------------------------------------


def test_passthrough_file_then_env_then_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ini(tmp_path, "[bridge]\npassthrough = false\n")
    data = CONSOLE + k6_stream(1)
    hidden = runner.invoke(app, ["--config", str(path), "-"], input=data)
    assert hidden.exit_code == 0
    assert "execution: local" not in hidden.stderr
    monkeypatch.setenv("K6MCP_BRIDGE_PASSTHROUGH", "true")
    shown = runner.invoke(app, ["--config", str(path), "-"], input=data)
    assert shown.exit_code == 0
    assert "execution: local" in shown.stderr
    flagged = runner.invoke(app, ["--config", str(path), "--no-passthrough", "-"], input=data)
    assert flagged.exit_code == 0
    assert "execution: local" not in flagged.stderr


def test_max_errors_file_then_env_then_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ini(tmp_path, "[bridge]\nmax_errors = 3\n")
    data = k6_stream(1) + BAD * 5
    dead = tmp_path / "dead.txt"

    def rejected(*flags: str) -> int:
        args = ["--config", str(path), "--dead-letter", str(dead), *flags, "-"]
        result = runner.invoke(app, args, input=data)
        assert result.exit_code == 65, result.stderr
        return dead.read_bytes().count(b"\n")

    assert rejected() == 3
    monkeypatch.setenv("K6MCP_BRIDGE_MAX_ERRORS", "2")
    assert rejected() == 2
    assert rejected("--max-errors", "1") == 1


def test_plugins_from_file_and_env_and_p_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ini(tmp_path, "[plugins]\nenabled = jsonl\n")
    only_jsonl = runner.invoke(app, ["--config", str(path), "-"], input=k6_stream(2))
    assert only_jsonl.exit_code == 0
    assert len(records(only_jsonl.stdout)) == 3
    assert "lines read" not in only_jsonl.stderr

    monkeypatch.setenv("K6MCP_BRIDGE_PLUGINS", "summary")
    only_summary = runner.invoke(app, ["--config", str(path), "-"], input=k6_stream(2))
    assert only_summary.exit_code == 0
    assert only_summary.stdout == ""
    assert "lines read" in only_summary.stderr

    both = runner.invoke(app, ["--config", str(path), "-p", "jsonl", "-"], input=k6_stream(2))
    assert both.exit_code == 0
    assert len(records(both.stdout)) == 3
    assert "lines read" in both.stderr


def test_an_empty_enabled_list_runs_no_plugin(tmp_path: Path) -> None:
    path = ini(tmp_path, "[plugins]\nenabled =\n")
    result = runner.invoke(app, ["--config", str(path), "-"], input=k6_stream(2))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "lines read" not in result.stderr


def test_a_plugin_listed_twice_runs_once(tmp_path: Path) -> None:
    path = ini(tmp_path, "[plugins]\nenabled = jsonl, jsonl\n")
    result = runner.invoke(app, ["--config", str(path), "-p", "jsonl", "-"], input=k6_stream(2))
    assert result.exit_code == 0, result.stderr
    assert len(records(result.stdout)) == 3


def test_plugin_option_file_then_flag(tmp_path: Path) -> None:
    from_file, from_flag = tmp_path / "file.jsonl", tmp_path / "flag.jsonl"
    path = ini(tmp_path, f"[plugins]\nenabled = jsonl\n[plugin.jsonl]\npath = {from_file}\n")
    result = runner.invoke(app, ["--config", str(path), "-"], input=k6_stream(2))
    assert result.exit_code == 0, result.stderr
    assert len(records(from_file.read_text())) == 3
    from_file.unlink()
    args = ["--config", str(path), "-o", f"jsonl.path={from_flag}", "-"]
    result = runner.invoke(app, args, input=k6_stream(2))
    assert result.exit_code == 0, result.stderr
    assert len(records(from_flag.read_text())) == 3
    assert not from_file.exists()


@pytest.mark.parametrize(
    ("flags", "word"),
    [(["--plugin-errors", "explode"], "--plugin-errors"), (["--max-errors", "0"], "--max-errors")],
)
def test_a_bad_flag_value_names_the_flag(flags: list[str], word: str) -> None:
    result = runner.invoke(app, [*flags, "-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert word in result.stderr


def test_quiet_hides_per_line_warnings_and_verbose_wins_over_the_file(tmp_path: Path) -> None:
    data = k6_stream(1) + BAD
    loud = runner.invoke(app, ["-"], input=data)
    assert loud.exit_code == 65
    assert "line 3" in loud.stderr
    quiet = runner.invoke(app, ["-q", "-"], input=data)
    assert quiet.exit_code == 65
    assert "line 3" not in quiet.stderr
    path = ini(tmp_path, "[logging]\nlevel = error\n")
    from_file = runner.invoke(app, ["--config", str(path), "-"], input=data)
    assert "line 3" not in from_file.stderr
    flagged = runner.invoke(app, ["--config", str(path), "--log-level", "info", "-"], input=data)
    assert "line 3" in flagged.stderr


def test_plugins_command_reads_the_enabled_list_from_the_config(tmp_path: Path) -> None:
    path = ini(tmp_path, "[plugins]\nenabled = jsonl\n")
    result = runner.invoke(app, ["plugins", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["jsonl"]["enabled"] is True
    assert rows["summary"]["enabled"] is False


def test_runs_fine_with_no_config_file_anywhere(tmp_path: Path) -> None:
    # a fresh cwd and HOME, no K6MCP_BRIDGE_* variable: defaults only
    env = clean_env(HOME=str(tmp_path))
    proc = subprocess.run(
        [bridge_exe(), "-"],
        input=k6_stream(3),
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    assert b"lines read" in proc.stderr


def test_metric_type_keys_keep_their_case_and_default_section_is_rejected(tmp_path: Path) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text(
        "metric_name,timestamp,metric_value,extra_tags,metadata\nmyCounter,1795543202,1.000000,,\n",
        encoding="utf-8",
    )
    good = tmp_path / "good.ini"
    good.write_text("[metric_types]\nmyCounter = counter\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(good), "-p", "jsonl", str(csv)])
    assert result.exit_code == 0, result.stderr
    kinds = {m["data"]["name"]: m["data"]["type"] for m in records(result.stdout)[:1]}
    assert kinds == {"myCounter": "counter"}
    bad = tmp_path / "bad.ini"
    bad.write_text("[DEFAULT]\nbatch_size = 3\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(bad), str(csv)])
    assert result.exit_code == 2
    assert "[DEFAULT]" in result.stderr


def test_thresholds_from_is_the_old_name_of_script(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = ini(tmp_path, "[bridge]\nthresholds_from = old.js\n")
    assert validate(settings_from(path)).script == Path("old.js")
    env = {"K6MCP_BRIDGE_THRESHOLDS_FROM": "env.js"}
    assert validate(settings_from(path, env)).script == Path("env.js")
    assert "'thresholds_from' is deprecated, it is now 'script'" in caplog.text


@pytest.mark.parametrize(("unit", "given"), [("ms", "ms"), ("", None)])
def test_summary_time_unit_as_k6_takes_it(unit: str, given: str | None) -> None:
    assert (
        validate(settings_from(env={"K6MCP_BRIDGE_SUMMARY_TIME_UNIT": unit})).summary_time_unit
        == given
    )


def test_a_time_unit_k6_rejects_is_rejected_with_k6s_words() -> None:
    result = runner.invoke(app, ["--summary-time-unit", "m", "-"], input=k6_stream(1))
    assert result.exit_code == 2
    assert "invalid summary time unit 'm', use 's', 'ms' or 'us'" in result.stderr
    assert "--summary-time-unit" in result.stderr
