"""The group tree and check counts, as k6 v1.1.0 builds them from its samples."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import K6_RUN, K6_SAMPLES, SAMPLES
from k6_summaries import T0, decode, group_order, run_k6
from k6mcp_bridge.k6.group_tree import GroupTree, k6_id
from k6mcp_bridge.k6.summary_export import export
from k6mcp_bridge.messages import Check, Group, MetricsSnapshot
from k6mcp_bridge.samples import PointRecord


def point(metric: str, value: float = 1.0, **tags: str) -> PointRecord:
    return PointRecord(metric, value, tags or None, None, T0)


def check(name: str, group: str, value: float = 1.0, **tags: str) -> PointRecord:
    return point("checks", value, check=name, group=group, **tags)


def shape(group: Group) -> list[object]:
    """Names, counts and nesting, in order."""
    return [
        [(c.name, c.passes, c.fails) for c in group.checks],
        [(g.name, shape(g)) for g in group.groups],
    ]


@pytest.mark.parametrize(
    ("stream", "k6_export"),
    [
        (K6_SAMPLES / "json-full-2vus.jsonl", K6_SAMPLES / "summary-export-full.json"),
        (K6_RUN, SAMPLES / "k6-summary-export.json"),
    ],
    ids=["shared-full-2vus", "sample-outputs-run"],
)
def test_root_group_ids_paths_and_order_equal_k6s(stream: Path, k6_export: Path) -> None:
    tree = GroupTree()
    tree.add(decode(stream))
    theirs = json.loads(k6_export.read_text())["root_group"]
    mine = export_root(tree)
    assert mine == theirs
    assert group_order(mine) == group_order(theirs)


def export_root(tree: GroupTree) -> dict[str, Any]:
    snapshot = MetricsSnapshot(
        time=None, final=True, test_run_duration_ms=0.0, metrics={}, root_group=tree.root()
    )
    root: dict[str, Any] = export(snapshot)["root_group"]
    return root


def test_groups_come_from_checks_and_group_duration_points_only() -> None:
    tree = GroupTree()
    tree.add(
        [
            point("http_reqs", group="::setup"),  # setup()'s requests make no group
            point("group_duration", 3.0, group="::api::items"),  # ancestors first
            check("even", "::api::items", 0.0),
            check("even", "::api::items", math.nan),  # NaN != 0: a pass
            check("even", "::api::items", -1.0),
            point("checks", 1.0, group="::setup"),  # no check tag: the group only
            point("group_duration", 1.0, group="::api::empty"),
            check("root", ""),
            point("checks", check="untagged"),  # no group tag: the text summary only
            point("vus", 2.0),
        ]
    )
    root = tree.root()
    assert shape(root) == [
        [("root", 1, 0)],
        [
            ("api", [[], [("items", [[("even", 2, 1)], []]), ("empty", [[], []])]]),
            ("setup", [[], []]),
        ],
    ]
    items = root.groups[0].groups[0]
    assert (items.path, items.id) == ("::api::items", k6_id("::api::items"))
    assert items.checks[0] == Check(
        name="even",
        path="::api::items::even",
        id=k6_id("::api::items::even"),
        passes=2,
        fails=1,
    )
    assert root.id == "d41d8cd98f00b204e9800998ecf8427e"
    assert [c.name for c in tree.checks()] == ["even", "root", "untagged"]


def test_text_summary_checks_merge_names_across_groups_first_seen_first() -> None:
    tree = GroupTree()
    tree.add([check("shared", "::a", 1.0), check("solo", "::b"), check("shared", "::b", 0.0)])
    tree.add([check("shared", "::a", 0.0)])
    assert tree.checks() == [
        Check(name="shared", path="::a::shared", id=k6_id("::a::shared"), passes=1, fails=2),
        Check(name="solo", path="::b::solo", id=k6_id("::b::solo"), passes=1, fails=0),
    ]
    assert shape(tree.root())[1] == [
        ("a", [[("shared", 1, 1)], []]),
        ("b", [[("solo", 1, 0), ("shared", 0, 1)], []]),
    ]


def test_same_tree_whatever_the_batch_size() -> None:
    messages = decode(K6_RUN)
    whole, one = GroupTree(), GroupTree()
    whole.add(messages)
    for message in messages:
        one.add([message])
    assert whole.root() == one.root() and whole.checks() == one.checks()


@pytest.mark.parametrize(
    ("system_tags", "groups", "root_checks"),
    [
        ("check,scenario", [], []),  # no group tag: k6's root_group is empty
        ("group,scenario", ["setup", "api", "other", "teardown"], []),  # no check tag
    ],
)
def test_live_k6_without_group_or_check_tags(
    tmp_path: Path, system_tags: str, groups: list[str], root_checks: list[str]
) -> None:
    run = run_k6(tmp_path, "--system-tags", system_tags)
    theirs = json.loads(run.export.read_text())["root_group"]
    tree = GroupTree()
    tree.add(decode(run.stream))
    mine = export_root(tree)
    assert mine == theirs
    assert [*mine["groups"]] == groups and [*mine["checks"]] == root_checks
