"""``k6 inspect`` (real k6 v1.1.0): a script's thresholds, summaryTrendStats and summaryTimeUnit,
consolidated as ``k6 run`` does, and the precedence of the bridge's own settings over them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from k6lab import k6_binary
from k6mcp_bridge.builtin.summary import SummaryPlugin
from k6mcp_bridge.config import Layered, read_env, read_file, validate
from k6mcp_bridge.delivery.runner import aggregation_settings
from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.k6.script_options import script_options

SCRIPT = Path(__file__).resolve().parents[1] / "k6_scripts" / "script_options.js"
SCRIPT_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99.9)", "count")
K6_DEFAULT_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)")


@pytest.fixture(autouse=True)
def _k6_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """k6 found as ``k6`` (as the bridge looks for it); no inherited K6_SUMMARY_* variable."""
    path = os.pathsep.join([os.path.dirname(k6_binary()), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    for name in ("K6_SUMMARY_TREND_STATS", "K6_SUMMARY_TIME_UNIT", "K6_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def script(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "script.js"
    path.write_text(f"export const options = {options};\nexport default function () {{}}\n")
    return path


def test_the_scripts_own_options() -> None:
    options = script_options(SCRIPT)
    assert options.trend_stats == SCRIPT_STATS
    assert options.time_unit == "ms"
    keys = {(t.key, t.source) for t in options.thresholds}
    assert ("http_req_duration{name:slow}", "min>=15") in keys  # never in k6's stream
    assert len(keys) == 7


def test_a_script_that_sets_none_gets_k6s_defaults(tmp_path: Path) -> None:
    options = script_options(script(tmp_path, "{ vus: 1, iterations: 1 }"))
    assert options.thresholds == ()
    assert options.trend_stats == K6_DEFAULT_STATS
    assert options.time_unit is None


def test_an_empty_list_is_kept_as_k6_keeps_it(tmp_path: Path) -> None:
    """k6 then prints trends with no column and exports ``{}`` for them."""
    options = script_options(script(tmp_path, "{ summaryTrendStats: [], summaryTimeUnit: '' }"))
    assert options.trend_stats == ()
    assert options.time_unit is None


def test_k6s_environment_beats_the_script_as_in_k6_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K6_SUMMARY_TREND_STATS", "med,count")
    monkeypatch.setenv("K6_SUMMARY_TIME_UNIT", "us")
    options = script_options(SCRIPT)
    assert (options.trend_stats, options.time_unit) == (("med", "count"), "us")


def test_a_time_unit_k6_would_ignore_is_none(tmp_path: Path) -> None:
    """k6 run accepts ``summaryTimeUnit: 'h'`` from a script and prints its automatic units."""
    assert script_options(script(tmp_path, "{ summaryTimeUnit: 'h' }")).time_unit is None


def test_the_script_sees_the_environment_as_in_k6_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SO_STATS", "max,p(99)")
    options = script_options(script(tmp_path, "{ summaryTrendStats: __ENV.SO_STATS.split(',') }"))
    assert options.trend_stats == ("max", "p(99)")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("{ vus: 1,, }", "k6 inspect failed: GoError: "),
        ("{ summaryTrendStats: ['avg', 'p(x)'] }", "invalid percentile trend stat value 'p(x)'"),
        ("{ summaryTrendStats: __ENV.SO_UNSET.split(',') }", "TypeError: Cannot read property"),
    ],
)
def test_what_k6_rejects_is_one_line(tmp_path: Path, options: str, words: str) -> None:
    path = script(tmp_path, options)
    with pytest.raises(ConfigError) as caught:
        script_options(path)
    message = str(caught.value)
    assert message.startswith(f"--script {path}: k6 inspect failed: ")
    assert words in message and "\n" not in message and "level=error" not in message


def test_no_k6_on_path_is_said(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not on PATH"):
        script_options(SCRIPT, k6=str(tmp_path / "no-k6"))


# --- precedence: the bridge's own setting, else the script's, else k6's default -------------------


def layered(tmp_path: Path, where: str, key: str, value: str) -> Layered:
    layers = Layered()
    if where == "file":
        ini = tmp_path / "bridge.ini"
        ini.write_text(f"[bridge]\nscript = {SCRIPT}\n{key} = {value}\n")
        read_file(ini, layers)
        return layers
    env = {"K6MCP_BRIDGE_SCRIPT": str(SCRIPT)}
    if where == "env":
        env[f"K6MCP_BRIDGE_{key.upper()}"] = value
    read_env(env, layers)
    if where == "flag":
        layers.set(key, value, f"option --{key.replace('_', '-')}")
    return layers


@pytest.mark.parametrize("where", ["file", "env", "flag"])
def test_a_given_setting_beats_the_script(tmp_path: Path, where: str) -> None:
    layers = layered(tmp_path, where, "summary_trend_stats", "avg,max")
    layers.values.update(layered(tmp_path, where, "summary_time_unit", "s").values)
    aggregation = aggregation_settings(validate(layers), [SummaryPlugin()])
    assert aggregation is not None
    assert (aggregation.trend_stats, aggregation.time_unit) == ("avg,max", "s")
    assert len(aggregation.thresholds) == 7  # the script's thresholds still count


def test_without_a_setting_the_scripts_options_apply(tmp_path: Path) -> None:
    aggregation = aggregation_settings(
        validate(layered(tmp_path, "none", "", "")), [SummaryPlugin()]
    )
    assert aggregation is not None
    assert (tuple(aggregation.trend_stats), aggregation.time_unit) == (SCRIPT_STATS, "ms")


def test_without_a_script_k6s_defaults_apply() -> None:
    aggregation = aggregation_settings(validate(Layered()), [SummaryPlugin()])
    assert aggregation is not None
    assert aggregation.trend_stats == ",".join(K6_DEFAULT_STATS)
    assert aggregation.time_unit is None
