"""``MergedFeed.windows``: runners' windows to the merger's plugins, a second window of a time slot
marked ``late``, whatever the widths (from the rollups' ladder); the real store adds them up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from k6mcp_bridge.config import Settings
from k6mcp_bridge.delivery.merged_feed import MergedFeed, Slots
from k6mcp_bridge.delivery.runner import resolve_aggregation
from k6mcp_bridge.messages import Message, Window
from k6mcp_bridge.plugin import Plugin
from k6mcp_bridge.store.query import Store
from k6mcp_bridge.store.writer import StoreConfig, StorePlugin
from reportlab import T0, window


class Windows(Plugin):
    name = "windows"
    accepts = frozenset({"window"})

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Window] = []

    def process_batch(self, messages: Sequence[Message]) -> None:
        self.got += [message.data for message in messages]  # type: ignore[misc]


def test_a_slot_sent_before_makes_a_window_late_whatever_the_widths() -> None:
    slots = Slots()
    assert [
        slots.seen(10, 1),
        slots.seen(10, 1),  # another runner's bucket of the same second
        slots.seen(11, 1),
        slots.seen(10, 2),  # a wider bucket holding both
        slots.seen(12, 2),
        slots.seen(13, 1),  # inside [12, 14)
        slots.seen(20, 10),  # holds none sent before
        slots.seen(0, 30),  # holds all of them
        slots.seen(30, 30),
    ] == [False, True, False, True, False, True, False, True, False]


def test_the_store_adds_up_the_runners_windows_of_one_slot(tmp_path: Path) -> None:
    recorder, store = Windows(), StorePlugin(StoreConfig(path=str(tmp_path / "runs.db")))
    settings = Settings()
    feed = MergedFeed([recorder, store], settings, resolve_aggregation(settings, []), "merge test")
    first, second = window(0), window(0, failed=0)
    late = window(1).model_copy(update={"late": True, "final": True})
    feed.windows([first, second, window(1)])
    feed.windows([late, window(2, width=2)])
    feed.finish([])
    assert [(w.late, w.final) for w in recorder.got] == [
        (False, False),
        (True, False),  # the second runner's bucket of second 0
        (False, False),
        (True, False),  # late already: stays late; `final` is not the merged run's
        (False, False),
    ]
    assert recorder.got[0] is first  # sent as it is when nothing changes
    requests: dict[int, float] = {}
    with Store(tmp_path / "runs.db") as stored:
        [run] = stored.runs()
        for metric, _, _, start, width, bucket in stored.buckets(run.id):
            if metric == "http_reqs":
                assert width == 2  # compacted to the widest width seen, as for one run
                second = start - int(T0.timestamp())
                requests[second] = requests.get(second, 0) + bucket.sum
    assert requests == {0: 4 + 4 + 4 + 4, 2: 4}  # seconds 0 and 1 of both runners, then 2-3
