"""The NATS tests' parts: a real ``nats-server`` with JetStream, the bridge as a process, and the
comparisons of merged summary exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def bridge_exe() -> str:
    beside = Path(sys.executable).parent / "k6mcp-bridge"
    return str(beside) if beside.exists() else "k6mcp-bridge"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("K6MCP_")}


def bridge(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bridge_exe(), *args], capture_output=True, text=True, timeout=timeout, env=env()
    )


class NatsServer:
    """``nats-server -js`` on a random loopback port, with a store directory; stop and start
    again on the same port and store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        store, ports = self.directory / "store", self.directory / "ports"
        ports.mkdir(parents=True, exist_ok=True)
        for old in ports.glob("*.ports"):
            old.unlink()
        port = str(self.port) if self.port else "-1"
        self.process = subprocess.Popen(
            [
                "nats-server",
                "-js",
                "-sd",
                str(store),
                "-a",
                "127.0.0.1",
                "-p",
                port,
                "--ports_file_dir",
                str(ports),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "server.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            files = list(ports.glob("*.ports"))
            if files and files[0].read_text().strip():
                url = json.loads(files[0].read_text())["nats"][0]
                self.port = int(url.rsplit(":", 1)[1])
                return
            assert self.process.poll() is None, (self.directory / "server.log").read_text()
            time.sleep(0.05)
        raise AssertionError("nats-server wrote no ports file")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def verdicts(export: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {
        (name, source): failed
        for name, metric in export["metrics"].items()
        for source, failed in (metric.get("thresholds") or {}).items()
    }


def assert_same_export(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Equal numbers (a counter's rate divides by the span: equal to float rounding)."""
    assert set(ours["metrics"]) == set(theirs["metrics"])
    for name, metric in theirs["metrics"].items():
        for key, value in metric.items():
            if isinstance(value, float):
                assert ours["metrics"][name][key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert ours["metrics"][name][key] == value, (name, key)
    assert ours["root_group"] == theirs["root_group"]


def assert_like_the_whole_run(merged: dict[str, Any], whole: dict[str, Any]) -> None:
    """The deterministic metrics of ``merged`` (a summary export) equal k6's export of the whole
    run: counts, sums, min and max exactly, percentiles within 1%; every verdict the same."""
    assert verdicts(merged) == verdicts(whole)
    for name in ("done", "work", "odd", "iterations", "http_reqs", "checks"):
        for key, value in whole["metrics"][name].items():
            if key in ("thresholds", "rate"):
                continue
            rel = 0.01 if key in ("med", "p(90)", "p(95)") else 1e-12
            assert merged["metrics"][name][key] == pytest.approx(value, rel=rel), (name, key)
