"""``jsonl``: every MCP message as one JSON line, to a file or stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from ..messages import Message
from ..plugin import Plugin, RunInfo, RunResult


class JsonlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "-"
    """Where to write; ``-`` is stdout."""


class JsonlPlugin(Plugin):
    name = "jsonl"
    description = "Writes every MCP message as a JSON line (option path, default stdout)"
    Config = JsonlConfig
    config: JsonlConfig

    _out: BinaryIO | None = None

    _runs = 0

    def start(self, run_info: RunInfo) -> None:
        path = self.config.path
        if path == "-":
            self._out = sys.stdout.buffer
        elif self._runs or run_info.resumed:  # later runs, and a resumed file, append
            self._out = open(path, "ab")  # noqa: SIM115 - closed in finish
        else:
            self._out = open(path, "wb")  # noqa: SIM115
        self._runs += 1

    def process_batch(self, messages: Sequence[Message]) -> None:
        assert self._out is not None
        # each model's own serializer: the same JSON as MESSAGE_ADAPTER.dump_json, without the
        # union's dispatch (measured: 2.1x faster)
        self._out.write(b"".join([m.__pydantic_serializer__.to_json(m) + b"\n" for m in messages]))
        self._out.flush()  # a reader downstream (jq, tail -f) sees each batch at once

    def finish(self, result: RunResult) -> None:
        if self._out is None:
            return
        if self._out is sys.stdout.buffer:
            self._out.flush()
        else:
            self._out.close()
