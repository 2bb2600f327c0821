"""``--summary-export`` against k6 v1.1.0's own files, from the same runs' JSON streams.

Every comparison is byte for byte on the file text, once our document's keys are put in the
order of k6's file: k6 writes its Go maps' keys in an order that changes from run to run, so
that order alone is not ours to match. The order of groups and checks is k6's (not a Go map)
and is compared as it is.

Also home to what the summary tests share: :func:`build` (a snapshot the way the pipeline makes
it) and :func:`run_k6` with :data:`LIVE_SCRIPT` (a real k6 run, no network, exit 99).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import K6_RUN, K6_SAMPLES, SAMPLES
from k6_summaries import K6Run, build, export_duration, group_order, run_k6
from k6mcp_bridge.k6.summary_export import dumps, export, js_number, js_to_fixed, write_export

SCRIPTS = K6_SAMPLES / "scripts"


def in_order_of(mine: Any, theirs: Any) -> Any:
    """``mine`` with every object's keys in ``theirs``' order (then any extra keys)."""
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return mine
    keys = [key for key in theirs if key in mine] + [key for key in mine if key not in theirs]
    return {key: in_order_of(mine[key], theirs.get(key)) for key in keys}


def assert_same_file(mine: dict[str, Any], k6_text: str) -> None:
    theirs = json.loads(k6_text)
    assert group_order(mine["root_group"]) == group_order(theirs["root_group"])
    assert dumps(in_order_of(mine, theirs)) == k6_text


EXPORT_CASES = {
    "shared-full-2vus": ("json-full-2vus.jsonl", "summary-export-full.json", "full.js"),
    "negative-gauge": (
        "json-TZ-Asia-Kolkata.jsonl",
        "summary-export-negative-gauge.json",
        "small.js",
    ),
    "inf-null": ("json-plus-minus-Inf-INVALID.jsonl", "summary-export-Inf-null.json", None),
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export_is_k6s_file_byte_for_byte(case: str) -> None:
    stream, k6_file, script = EXPORT_CASES[case]
    k6_text = (K6_SAMPLES / k6_file).read_text()
    k6 = json.loads(k6_text)
    thresholds = SCRIPTS / script if script else None  # inf.js has none
    built = build(K6_SAMPLES / stream, thresholds, export_duration(k6["metrics"]))
    mine = export(
        built.snapshot, **({"setup_data": k6["setup_data"]} if "setup_data" in k6 else {})
    )
    assert_same_file(mine, k6_text)


def test_sample_outputs_run_export_byte_for_byte() -> None:
    k6_text = (SAMPLES / "k6-summary-export.json").read_text()
    k6 = json.loads(k6_text)
    built = build(K6_RUN, SAMPLES / "script.js", export_duration(k6["metrics"]))
    assert_same_file(export(built.snapshot, setup_data=k6["setup_data"]), k6_text)


def test_shape_setup_data_nulls_and_inverted_thresholds(tmp_path: Path) -> None:
    k6 = json.loads((K6_SAMPLES / "summary-export-full.json").read_text())
    built = build(K6_SAMPLES / "json-full-2vus.jsonl", SCRIPTS / "full.js", 4.0)
    document = export(built.snapshot)
    assert list(document) == ["root_group", "metrics"]  # setup_data is not in the stream
    assert set(document["metrics"]) == set(k6["metrics"])
    checks = document["metrics"]["checks"]
    assert list(checks) == ["passes", "fails", "thresholds", "value"]  # k6's own order
    assert checks["thresholds"] == {"rate>0.9": False}  # false: the threshold passed
    write_export(built.snapshot, tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text() == dumps(document)
    assert not dumps(document).endswith("\n")
    inf = build(K6_SAMPLES / "json-plus-minus-Inf-INVALID.jsonl", None, 1.0)
    trend = export(inf.snapshot)["metrics"]["inf_trend"]
    assert trend["min"] is None and trend["max"] is None and trend["avg"] is None


def test_stringify_keeps_sobeks_indentation_after_empty_objects() -> None:
    """What k6 v1.1.0 printed for these objects (``JSON.stringify(o, null, 4)`` in k6)."""
    document = {"r": {"g": {"n": 1, "groups": {}, "checks": {"c": {"p": 1}}, "a": {"q": []}}}}
    assert dumps(document) == (
        '{\n    "r": {\n        "g": {\n            "n": 1,\n            "groups": {},\n'
        '            "checks": {\n                    "c": {\n                        "p": 1\n'
        '                    }\n                },\n            "a": {\n                    "q": []'
        "\n                }\n        }\n    }\n}"
    )
    assert dumps({"s": 'é "q"\n', "t": True, "n": None, "f": 0.1 + 0.2}) == (
        '{\n    "s": "é \\"q\\"\\n",\n    "t": true,\n    "n": null,\n'
        '    "f": 0.30000000000000004\n}'
    )


# String(x) and x.toFixed(n) as printed by k6 v1.1.0 (sobek) for these numbers.
JS_NUMBERS = [
    (0.5, "0.5", "1", "0.50"),
    (2.5, "2.5", "3", "2.50"),
    (1.125, "1.125", "1", "1.13"),
    (-1.125, "-1.125", "-1", "-1.13"),
    (1.005, "1.005", "1", "1.00"),
    (0.045, "0.045", "0", "0.04"),
    (1e21, "1e+21", "1e+21", "1e+21"),
    (123456789012345680000.0, "123456789012345680000", "123456789012345683968", None),
    (-0.0, "0", "0", "0.00"),
    (1e-7, "1e-7", "0", "0.00"),
    (1.23e-7, "1.23e-7", "0", "0.00"),
    (0.000001, "0.000001", "0", "0.00"),
    (1e16, "10000000000000000", "10000000000000000", None),
    (-0.0001, "-0.0001", "-0", "-0.00"),
    (5e-324, "5e-324", "0", "0.00"),
    (1.7976931348623157e308, "1.7976931348623157e+308", "1.7976931348623157e+308", None),
    (math.nan, "NaN", "NaN", "NaN"),
    (math.inf, "Infinity", "Infinity", "Infinity"),
    (-math.inf, "-Infinity", "-Infinity", "-Infinity"),
]


@pytest.mark.parametrize(("x", "string", "fixed0", "fixed2"), JS_NUMBERS)
def test_javascript_number_formatting(
    x: float, string: str, fixed0: str, fixed2: str | None
) -> None:
    assert js_number(x) == string
    assert js_to_fixed(x, 0) == fixed0
    if fixed2 is not None:
        assert js_to_fixed(x, 2) == fixed2


# --- a live k6 run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> K6Run:
    return run_k6(tmp_path_factory.mktemp("live"))


def test_live_run_export_byte_for_byte(live: K6Run) -> None:
    assert live.returncode == 99
    k6_text = live.export.read_text()
    built = build(live.stream, live.script, export_duration(json.loads(k6_text)["metrics"]))
    mine = export(built.snapshot)
    assert [*mine["root_group"]["groups"]] == ["setup", "api", "other", "teardown"]
    assert_same_file(mine, k6_text)
