"""Opening a store: default paths, a schema from elsewhere, corrupt and locked files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import K6_SAMPLES, clean_env
from k6mcp_bridge.errors import StoreError
from k6mcp_bridge.store.query import Store
from k6mcp_bridge.store.schema import SCHEMA_VERSION, default_path, open_writer
from storelab import cli, direct_plugin, finished, runs_json

SAMPLE = K6_SAMPLES / "json-full-2vus.jsonl"


def test_default_path_is_the_env_var_else_xdg(tmp_path: Path) -> None:
    assert default_path({"K6MCP_BRIDGE_STORE": str(tmp_path / "a.db")}) == tmp_path / "a.db"
    assert default_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "k6mcp-bridge/runs.db"
    assert default_path({"HOME": str(tmp_path)}).parts[-4:] == (
        ".local",
        "share",
        "k6mcp-bridge",
        "runs.db",
    )


def test_store_and_runs_need_no_configuration_with_the_env_var(tmp_path: Path) -> None:
    env = clean_env(K6MCP_BRIDGE_STORE=str(tmp_path / "deep" / "runs.db"))
    done = cli(str(SAMPLE), "-p", "store", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "deep" / "runs.db").exists()
    listed = cli("runs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert '"state": "finished"' in listed.stdout
    query = cli("query", "http_reqs", "--stat", "count", env=env)
    assert query.returncode == 0 and query.stdout.splitlines()[-2:] == ["count", "33"]


def test_xdg_data_home_is_the_default_folder(tmp_path: Path) -> None:
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    done = cli(str(SAMPLE), "-p", "store", env=env)
    assert done.returncode == 0, done.stderr
    assert runs_json(tmp_path / "xdg" / "k6mcp-bridge" / "runs.db")[0]["state"] == "finished"
    assert not (tmp_path / "home").exists()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 4}")
    message = (
        f"store {path} has schema version {SCHEMA_VERSION + 4}; "
        f"this k6mcp-bridge knows up to {SCHEMA_VERSION}: upgrade it"
    )
    with pytest.raises(StoreError) as caught:
        open_writer(path, 1.0)
    assert str(caught.value) == message
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == message


def test_a_file_with_other_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id)")
    with pytest.raises(
        StoreError, match=r"other\.db has tables that are not a k6mcp-bridge store's \(invoices\)"
    ):
        open_writer(path, 1.0)
    done = cli("runs", "--store", str(path))
    assert done.returncode == 2
    assert "not a k6mcp-bridge store" in done.stderr and str(path) in done.stderr


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    plugin = direct_plugin(path)
    plugin.finish(finished("interrupted"))
    assert runs_json(path)[0]["state"] == "interrupted"


def test_a_corrupt_store_is_one_clear_line_and_the_other_plugins_go_on(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not sqlite at all\n" * 200)
    out = tmp_path / "out.jsonl"
    done = cli(
        str(SAMPLE),
        "-p",
        "store",
        "-o",
        f"store.path={path}",
        "-p",
        "jsonl",
        "-o",
        f"jsonl.path={out}",
    )
    assert done.returncode == 70, done.stderr
    assert f"store {path}: it is not a k6mcp-bridge store or is corrupt" in done.stderr
    reference = cli(str(SAMPLE), "-p", "jsonl", "-o", f"jsonl.path={tmp_path / 'ref.jsonl'}")
    assert reference.returncode == 0
    assert out.read_bytes().count(b"\n") == (tmp_path / "ref.jsonl").read_bytes().count(b"\n") > 500
    for command in (["runs"], ["query", "http_reqs"]):
        read = cli(*command, "--store", str(path))
        assert read.returncode == 2
        [line] = read.stderr.splitlines()
        assert str(path) in line and "corrupt" in line


def test_a_store_locked_past_its_busy_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    direct_plugin(path).finish(finished())  # a valid store
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE runs SET source = source")
    try:
        out = tmp_path / "out.jsonl"
        done = cli(
            str(SAMPLE),
            *("-p", "store", "-o", f"store.path={path}", "-o", "store.busy_timeout=0.5"),
            *("-p", "jsonl", "-o", f"jsonl.path={out}"),
        )
        assert done.returncode == 70, done.stderr
        assert f"store {path}: it is locked by another writer" in done.stderr
        assert out.read_bytes().count(b"\n") > 500
        reader = cli("runs", "--store", str(path), "--json")  # a reader is not blocked (WAL)
        assert reader.returncode == 0, reader.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_missing_store_is_a_usage_error(tmp_path: Path) -> None:
    done = cli("runs", "--store", str(tmp_path / "none.db"))
    assert done.returncode == 2
    assert f"store {tmp_path / 'none.db'}: no such file" in done.stderr
