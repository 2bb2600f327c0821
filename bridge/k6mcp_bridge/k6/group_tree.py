"""k6's group tree and check counts, rebuilt from the ``checks`` and ``group_duration`` points.

k6 v1.1.0 builds the ``root_group`` of its summary (``handleSummary(data)``, ``--summary-export``)
from the samples themselves (obs: with the ``group`` system tag disabled its ``root_group`` is
empty, with the ``check`` tag disabled it has groups but no checks): every ``checks`` or
``group_duration`` sample carrying a ``group`` tag makes sure that group exists, its ancestors
first (``::api::items`` creates ``api`` then ``items``), and a ``checks`` sample that also
carries a ``check`` tag counts one pass (value != 0, so NaN passes) or fail for that check of
that group. Other samples create nothing: ``setup()``'s HTTP requests are tagged ``::setup``,
but a ``setup`` group only appears once a check or a ``group()`` runs there (then it is an
ordinary group, shared with any ``group('setup')`` of the default function; the same holds for
``teardown``). Groups and checks are listed in the order they first show up, as k6 lists them.

Each group has a name, a path (its ancestors' names and its own, each preceded by ``::``; the
root's is ``""``) and an id, the hex MD5 of the path; a check's path is
``<group path>::<check name>`` and its id the MD5 of that (src ``lib/models.go``; the ids in
``k6-samples/summary-export-full.json`` match).

k6's text summary lists checks differently (``internal/output/summary``): every ``checks``
sample with a ``check`` tag counts towards that name, whatever its group (or without one), in
the order first seen: :meth:`GroupTree.checks`.

:class:`GroupTree` is fed the ``Metric`` messages and the points of :attr:`GroupTree.METRICS`
that the aggregator picks out of each batch as it aggregates it (one pass over the batch, not
two); any other record it is given is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ..messages import Check, Group
from ..samples import Decoded, PointRecord

SEPARATOR = "::"


def k6_id(path: str) -> str:
    """k6's id of a group or check: the hex MD5 of its path."""
    return hashlib.md5(path.encode()).hexdigest()


class _Node:
    __slots__ = ("checks", "groups", "name", "path")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.groups: dict[str, _Node] = {}
        self.checks: dict[str, list[int]] = {}
        """Check name → ``[fails, passes]``."""

    def model(self) -> Group:
        return Group(
            name=self.name,
            path=self.path,
            id=k6_id(self.path),
            groups=[group.model() for group in self.groups.values()],
            checks=[_check(name, self.path, counts) for name, counts in self.checks.items()],
        )


def _check(name: str, group_path: str, counts: list[int]) -> Check:
    path = group_path + SEPARATOR + name
    return Check(name=name, path=path, id=k6_id(path), passes=counts[1], fails=counts[0])


class GroupTree:
    """k6's ``root_group`` and check counts, built from batches of MCP messages."""

    METRICS = frozenset({"checks", "group_duration"})
    """The metrics whose points it reads."""

    def __init__(self) -> None:
        self._root = _Node("", "")
        self._nodes: dict[str, _Node] = {"": self._root}
        """Group path (the ``group`` tag) → its node."""
        self._untagged = _Node("", "")
        """Checks without a ``group`` tag: counted by name only, in no group."""
        self._slots: dict[tuple[str | None, str], list[int]] = {}
        """``(group, check)`` → that check's ``[fails, passes]``."""
        self._seen: list[tuple[str, _Node]] = []
        """Every (check name, group node), first seen first."""

    def add(self, records: Sequence[Decoded]) -> None:
        """Take the groups and checks of a batch's points, in stream order."""
        slots = self._slots
        for data in records:
            if type(data) is not PointRecord:
                continue
            metric = data.metric
            if metric == "checks":
                tags = data.tags
                if tags is None:
                    continue
                name = tags.get("check")
                if name is None:
                    self._group(tags)
                    continue
                slot = slots.get((tags.get("group"), name))
                if slot is None:
                    slot = self._slot(tags, name)
                slot[data.value != 0] += 1
            elif metric == "group_duration" and data.tags:
                self._group(data.tags)

    def add_counts(self, metric: str, tags: Mapping[str, str], passes: int, fails: int) -> None:
        """What :meth:`add` makes of ``passes + fails`` points of one ``checks`` or
        ``group_duration`` series (a merged run's)."""
        if metric == "group_duration":
            self._group(tags)
        elif metric == "checks":
            name = tags.get("check")
            if name is None:
                self._group(tags)
                return
            slot = self._slots.get((tags.get("group"), name)) or self._slot(tags, name)
            slot[0] += fails
            slot[1] += passes

    def _group(self, tags: Mapping[str, str]) -> _Node:
        path = tags.get("group")
        if path is None:
            return self._untagged
        node = self._nodes.get(path)
        if node is None:
            node = self._root
            for name in path[len(SEPARATOR) :].split(SEPARATOR):
                child = node.groups.get(name)
                if child is None:
                    child = node.groups[name] = _Node(name, node.path + SEPARATOR + name)
                    self._nodes[child.path] = child
                node = child
        return node

    def _slot(self, tags: Mapping[str, str], name: str) -> list[int]:
        node = self._group(tags)
        slot = node.checks.get(name)
        if slot is None:
            slot = node.checks[name] = [0, 0]
            self._seen.append((name, node))
        self._slots[(tags.get("group"), name)] = slot
        return slot

    def root(self) -> Group:
        """k6's ``root_group``: nested groups and their checks, in k6's order."""
        return self._root.model()

    def checks(self) -> list[Check]:
        """Every check by name, whatever its group, first seen first (k6's text summary); the
        path and id are those of the first group it was seen in."""
        merged: dict[str, tuple[str, list[int]]] = {}
        for name, node in self._seen:
            fails, passes = node.checks[name]
            _, counts = merged.setdefault(name, (node.path, [0, 0]))
            counts[0] += fails
            counts[1] += passes
        return [_check(name, path, counts) for name, (path, counts) in merged.items()]
