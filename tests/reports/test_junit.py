"""The junit plugin on synthetic runs: suites, outcomes, options, hostile names, the schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest
import xmlschema
from pydantic import ValidationError

from conftest import ROOT
from k6mcp_bridge.messages import WindowMessage
from k6mcp_bridge.plugin import RunInfo, RunResult, Stats
from k6mcp_bridge.reports.junit import JunitConfig, JunitPlugin
from reportlab import HOSTILE, T0, snapshot, window

SCHEMA = xmlschema.XMLSchema(ROOT / "tests" / "data" / "junit-10.xsd")


def run(tmp_path: Path, status: str = "completed", errors: list[str] | None = None, **options: str):
    path = tmp_path / "TEST-k6.xml"
    plugin = JunitPlugin(JunitConfig(path=str(path), **options))
    plugin.start(RunInfo("test", T0, "0.0-test"))
    plugin.process_batch([WindowMessage(data=window(0)), WindowMessage(data=window(1))])
    stats = Stats(input_errors=errors or [])
    plugin.finish(RunResult(status, stats, 3.14159, metrics=snapshot()))  # type: ignore[arg-type]
    SCHEMA.validate(str(path))
    return path, ET.parse(path).getroot()


def cases(root: ET.Element, suite: str) -> dict[str, ET.Element]:
    found = root.find(f"testsuite[@name='{suite}']")
    assert found is not None
    return {case.get("name", ""): case for case in found.findall("testcase")}


def test_thresholds_checks_and_the_run_are_three_suites(tmp_path: Path) -> None:
    path, root = run(tmp_path)
    thresholds = cases(root, "k6.thresholds")
    shown = HOSTILE.replace("\x01", "\\x01")
    hostile_key = "http_req_duration{name:" + shown + "}: p(95)<50"
    assert set(thresholds) == {
        "http_req_duration: p(95)<500",
        "http_req_duration: avg<1000",
        hostile_key,
        "http_req_duration{name:never}: p(95)<100",
    }
    failure = thresholds["http_req_duration: p(95)<500"].find("failure")
    assert failure is not None
    assert failure.get("message") == "p(95)=612.25ms breaches 'p(95)<500'"
    assert thresholds["http_req_duration: avg<1000"].find("failure") is None
    skipped = thresholds["http_req_duration{name:never}: p(95)<100"].find("skipped")
    assert skipped is not None  # no sample matched the submetric: k6 passes it silently
    assert thresholds[hostile_key].find("skipped") is None  # the hostile name had samples

    (check,) = cases(root, "k6.checks").values()
    assert check.get("classname") == f"::{HOSTILE}".replace("\x01", "\\x01")
    failed = check.find("failure")
    assert failed is not None and failed.get("message") == "2 of 3 passed (66.67%)"

    (run_case,) = cases(root, "k6.run").values()
    assert run_case.get("time") == "3.142"
    assert len(run_case) == 1 and run_case[0].tag == "system-out"
    assert root.get("tests") == "6" and root.get("failures") == "2" and root.get("skipped") == "1"

    parsed = junitparser.JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in parsed}
    assert suites["k6.thresholds"].tests == 4 and suites["k6.thresholds"].failures == 1
    assert suites["k6.checks"].failures == 1
    names = [case.name for suite in parsed for case in suite]
    assert any("<script>alert(1)</script>" in name for name in names)  # markup is text


def test_hostile_names_stay_valid_xml_and_text(tmp_path: Path) -> None:
    path, _ = run(tmp_path)
    raw = path.read_bytes()
    assert b"<script>" not in raw  # escaped as &lt;script&gt;
    assert b"\x01" not in raw  # not allowed in XML 1.0: written as \x01
    assert "\u2028".encode() in raw  # allowed: kept
    ET.fromstring(raw)


@pytest.mark.parametrize(("rule", "fails"), [("strict", 1), ("ratio:0.6", 0), ("ratio:0.9", 1)])
def test_check_rules(tmp_path: Path, rule: str, fails: int) -> None:
    _, root = run(tmp_path, checks=rule)
    suite = root.find("testsuite[@name='k6.checks']")
    assert suite is not None and suite.get("failures") == str(fails)


def test_report_only_checks_never_fail(tmp_path: Path) -> None:
    _, root = run(tmp_path, checks="report-only")
    (check,) = cases(root, "k6.checks").values()
    assert check.find("failure") is None
    out = check.find("system-out")
    assert out is not None and out.text == "2 of 3 passed (66.67%)"


def test_bad_check_rule_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="strict, report-only or ratio"):
        JunitConfig(checks="ratio:2")


def test_an_interrupted_run_or_broken_input_is_an_error(tmp_path: Path) -> None:
    _, root = run(tmp_path, status="interrupted", errors=["truncated gzip file"])
    (case,) = cases(root, "k6.run").values()
    error = case.find("error")
    assert error is not None
    assert "interrupted" in error.get("message", "")
    assert "truncated gzip file" in error.get("message", "")


def test_no_snapshot_still_writes_a_valid_non_empty_report(tmp_path: Path) -> None:
    path = tmp_path / "out" / "TEST-k6.xml"
    plugin = JunitPlugin(JunitConfig(path=str(path)))
    plugin.start(RunInfo("test", T0, "0.0-test"))
    plugin.finish(RunResult("completed", Stats(), 0.0))
    SCHEMA.validate(str(path))
    root = ET.parse(path).getroot()
    assert root.get("tests") == "1"
    assert [s.get("name") for s in root] == ["k6.thresholds", "k6.checks", "k6.run"]
    assert not list(path.parent.glob(".*.tmp"))
