"""``k6mcp_bridge.testing``: replay a recorded stream into one plugin through the real pipeline."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from conftest import K6_RUN, k6_stream
from k6mcp_bridge import Message, Plugin, RunResult
from k6mcp_bridge.errors import PluginFailed
from k6mcp_bridge.testing import SAMPLES, replay, sample


class Collect(Plugin):
    name = "collect"
    types: ClassVar[list[str]] = []

    def start(self, run_info: object) -> None:
        self.messages: list[Message] = []
        self.result: RunResult | None = None

    def process_batch(self, messages: Sequence[Message]) -> None:
        self.messages.extend(messages)

    def finish(self, result: RunResult) -> None:
        self.result = result


class Limit(BaseModel):
    limit: int = 1


class Boom(Collect):
    name = "boom"
    Config = Limit

    def process_batch(self, messages: Sequence[Message]) -> None:
        raise RuntimeError("boom")


def test_the_bundled_sample_is_the_repositorys_real_capture() -> None:
    assert gzip.decompress(sample().read_bytes()) == K6_RUN.read_bytes()
    assert set(SAMPLES) == {"k6-run"}


@pytest.mark.parametrize("source", ["k6-run", str(K6_RUN), K6_RUN, K6_RUN.read_bytes()])
def test_a_path_bytes_or_a_sample_name_give_the_same_run(source: object) -> None:
    plugin, result = replay(source, Collect)  # type: ignore[arg-type]
    points = [m for m in plugin.messages if m.type == "point"]
    expected = K6_RUN.read_text(encoding="utf-8").count('"type":"Point"')
    assert len(points) == expected > 100
    assert result.status == "completed" and plugin.result is result
    assert result.metrics is not None and "http_reqs" in result.metrics.metrics
    assert {m.type for m in plugin.messages} >= {"metric", "point", "metrics", "threshold"}


def test_bridge_settings_and_plugin_options_are_validated() -> None:
    _, result = replay(
        k6_stream(5), Collect, bridge={"thresholds": ["m:count>100"], "batch_size": 2}
    )
    assert result.metrics is not None
    assert result.metrics.metrics["m"].thresholds["count>100"].ok is False
    with pytest.raises(ValidationError, match="nope"):
        replay(k6_stream(1), Boom, nope=1)
    with pytest.raises(TypeError, match="no Config"):
        replay(k6_stream(1), Collect, limit=1)


def test_a_plugin_that_raises_fails_the_replay() -> None:
    with pytest.raises(PluginFailed, match="boom"):
        replay(k6_stream(3), Boom, limit=2)


def test_an_unknown_sample_name_says_which_exist() -> None:
    with pytest.raises(ValueError, match="k6-run"):
        sample("nope")
