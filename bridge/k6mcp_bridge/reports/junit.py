"""``junit``: the run as JUnit XML that CI tools import (Jenkins, GitLab, Azure, GitHub actions).

Three suites, so the file is never empty:

* ``k6.thresholds``: one testcase per threshold (``METRIC: EXPR``, submetrics in k6's notation,
  e.g. ``http_req_duration{name:login}: p(95)<500``). It fails exactly when k6's verdict is
  failed; the message holds the observed value (``p(95)=612.31ms breaches 'p(95)<500'``). A
  threshold whose (sub)metric had no sample is ``skipped`` (k6 passes it silently).
* ``k6.checks``: one testcase per check, its group path in ``classname`` (``(root)`` at the top);
  it fails when ``fails > 0`` (option ``checks``: ``strict``), when its pass ratio is below R
  (``ratio:R``), or never (``report-only``). Message: ``75 of 80 passed (93.75%)``.
* ``k6.run``: one testcase, an ``error`` when the run was interrupted or the input broke off.

Written with :mod:`xml.etree.ElementTree` (which escapes markup); characters XML 1.0 cannot
hold are shown as ``\\xNN`` (:func:`~.text.clean`). ``time`` always has three decimals.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from ..files import write_atomically
from ..k6.thresholds import parse_metric_key
from ..messages import Group, Message, MetricsSnapshot, ThresholdWindow
from ..plugin import Plugin, RunInfo, RunResult
from .text import clean, observed_text

_RATIO = re.compile(r"ratio:(0(\.\d+)?|1(\.0+)?)")


class JunitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "TEST-k6.xml"
    """The XML file (the default matches Azure's and action-junit-report's default globs)."""
    checks: str = "strict"
    """``strict`` (a check fails when any of its runs failed), ``ratio:0.95`` (when its pass
    ratio is below 0.95), or ``report-only`` (never fails)."""

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: str) -> str:
        if value in ("strict", "report-only") or _RATIO.fullmatch(value):
            return value
        raise ValueError("must be strict, report-only or ratio:R with R in 0..1 (ratio:0.95)")


@dataclass
class Case:
    """One testcase: ``outcome`` is ``passed``, ``failure``, ``error`` or ``skipped``."""

    name: str
    classname: str
    outcome: str = "passed"
    message: str = ""
    detail: str = ""
    time: float = 0.0


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(case.outcome == outcome for case in self.cases)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _window_text(window: ThresholdWindow | None) -> str:
    if window is None or window.worst is None:
        return ""
    worst = window.worst
    return (
        f" (worst {window.over_s:g}s window {worst.start.isoformat()} .. {worst.end.isoformat()})"
    )


def threshold_cases(snapshot: MetricsSnapshot, has_samples: SeenSeries | None) -> Iterator[Case]:
    """One case per threshold of the final snapshot, in the snapshot's (k6's) order."""
    for key, metric in snapshot.metrics.items():
        for source, state in (metric.thresholds or {}).items():
            case = Case(f"{key}: {source.strip()}", "k6.thresholds")
            shown = observed_text(source, state, metric)
            if has_samples is not None and not has_samples(key):
                case.outcome, case.message = "skipped", f"{key} had no samples (k6 passes it)"
            elif not state.ok:
                case.outcome = "failure"
                case.message = f"{shown} breaches '{source.strip()}'{_window_text(state.window)}"
            else:
                case.detail = f"{shown} meets '{source.strip()}'"
            yield case


def _walk(group: Group) -> Iterator[tuple[str, Group]]:
    yield (group.path or "(root)"), group
    for sub in group.groups:
        yield from _walk(sub)


def check_cases(snapshot: MetricsSnapshot, rule: str) -> Iterator[Case]:
    """One case per check per group (``classname``: the group path, ``(root)`` at the top)."""
    minimum = float(rule.split(":", 1)[1]) if rule.startswith("ratio:") else None
    for path, group in _walk(snapshot.root_group):
        for check in group.checks:
            total = check.passes + check.fails
            ratio = check.passes / total if total else 1.0
            text = f"{check.passes} of {total} passed ({100 * ratio:.2f}%)"
            case = Case(check.name, path, detail=text)
            failed = ratio < minimum if minimum is not None else check.fails > 0
            if failed and rule != "report-only":
                case.outcome, case.message = "failure", text
            yield case


def run_case(result: RunResult) -> Case:
    case = Case("k6 run", "k6.run", time=result.elapsed)
    stats = result.stats
    case.detail = (
        f"status {result.status}; lines {stats.lines}, records {stats.messages}, "
        f"rejected {stats.rejected}"
    )
    problems = []
    if result.status != "completed":
        problems.append(f"the run was {result.status} before the end of its input")
    problems += [f"input error: {error}" for error in stats.input_errors]
    if problems:
        case.outcome, case.message = "error", "; ".join(problems)
    return case


def build(suites: Sequence[Suite], elapsed: float) -> ET.Element:
    """The ``<testsuites>`` element."""
    root = ET.Element("testsuites", name="k6", time=_seconds(elapsed))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        counts = {
            "tests": len(suite.cases),
            "failures": suite.count("failure"),
            "errors": suite.count("error"),
            "skipped": suite.count("skipped"),
        }
        for key, value in counts.items():
            totals[key] += value
        attributes = {"name": suite.name, **{key: str(value) for key, value in counts.items()}}
        attributes["time"] = _seconds(sum(case.time for case in suite.cases))
        element = ET.SubElement(root, "testsuite", attributes)
        for case in suite.cases:
            item = ET.SubElement(
                element,
                "testcase",
                name=clean(case.name) or "(unnamed)",
                classname=clean(case.classname) or "(root)",
                time=_seconds(case.time),
            )
            if case.outcome != "passed":
                ET.SubElement(item, case.outcome, message=clean(case.message)).text = clean(
                    case.message
                )
            if case.detail and case.detail != case.message:
                ET.SubElement(item, "system-out").text = clean(case.detail)
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("skipped", str(totals["skipped"]))
    return root


class SeenSeries:
    """Which metrics and tag sets had samples, from the ``window`` messages: answers whether a
    (sub)metric key (``http_req_duration{name:login}``) matched any sample."""

    def __init__(self) -> None:
        self._tags: dict[str, set[frozenset[tuple[str, str]]]] = {}

    def add(self, metric: str, tags: dict[str, str]) -> None:
        self._tags.setdefault(metric, set()).add(frozenset(tags.items()))

    def __call__(self, key: str) -> bool:
        try:
            metric, pairs, _ = parse_metric_key(key)
        except ValueError:
            return True
        wanted = set(pairs)
        return any(wanted <= tags for tags in self._tags.get(metric, ()))


def write_report(path: Path, data: bytes) -> None:
    """Write a report atomically, making its folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)


class JunitPlugin(Plugin):
    name = "junit"
    description = "Writes thresholds, checks and the run as JUnit XML (option path, TEST-k6.xml)"
    Config = JunitConfig
    config: JunitConfig
    accepts = frozenset({"metrics", "window"})

    def __init__(self, config: BaseModel | None = None) -> None:
        super().__init__(config)
        self._reset()

    def _reset(self) -> None:
        self._seen = SeenSeries()
        self._windows = 0
        self._snapshot: MetricsSnapshot | None = None

    def start(self, run_info: RunInfo) -> None:
        self._reset()

    def process_batch(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.type == "window":
                self._windows += 1
                for series in message.data.series:
                    self._seen.add(series.metric, series.tags)
            elif message.type == "metrics":
                self._snapshot = message.data

    def finish(self, result: RunResult) -> None:
        snapshot = result.metrics or self._snapshot
        suites = [Suite("k6.thresholds"), Suite("k6.checks"), Suite("k6.run")]
        if snapshot is not None:
            seen = self._seen if self._windows else None
            suites[0].cases += threshold_cases(snapshot, seen)
            suites[1].cases += check_cases(snapshot, self.config.checks)
        suites[2].cases.append(run_case(result))
        root = build(suites, result.elapsed)
        ET.indent(root)
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
        write_report(Path(self.config.path), data)
