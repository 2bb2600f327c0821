"""The store's file: where it lives, its tables, and opening it (create, migrate or refuse).

One SQLite file holds many runs. The writer (the ``store`` plugin) opens it read-write in WAL
mode, so readers (``runs``, ``query``, another process) open it read-only and read while k6
still runs. The schema version is ``PRAGMA user_version``; a file of a newer version is refused,
an empty or new file is created, a file with tables that are not ours is refused. Every failure
is one :class:`~..errors.StoreError` line naming the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from ..environment import ENV_STORE
from ..errors import StoreError

SCHEMA_VERSION = 1
"""The newest schema this bridge knows (``PRAGMA user_version``)."""

_TABLES = ("runs", "metrics", "series", "buckets", "snapshots", "verdicts")

_DDL = """
CREATE TABLE runs (
    id             TEXT PRIMARY KEY,   -- UTC start time and a random suffix: sortable, readable
    source         TEXT NOT NULL,
    script         TEXT,
    bridge_version TEXT NOT NULL,
    started_at     TEXT NOT NULL,      -- wall clock, RFC 3339
    ended_at       TEXT,
    state          TEXT NOT NULL,      -- running | finished | interrupted (stale: computed)
    heartbeat_at   REAL NOT NULL,      -- wall clock, Unix seconds
    heartbeat_s    REAL NOT NULL,      -- the writer's heartbeat interval
    first_time     REAL,               -- stream time: the first bucket's start
    last_time      REAL,               -- stream time: the latest bucket's end
    width_s        INTEGER             -- the widest bucket so far (all older ones compacted to it)
);
CREATE TABLE metrics (
    run_id     TEXT NOT NULL REFERENCES runs(id),
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    contains   TEXT NOT NULL,
    thresholds TEXT NOT NULL,          -- JSON list
    PRIMARY KEY (run_id, name)
);
CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    metric TEXT NOT NULL,
    tags   TEXT NOT NULL,              -- JSON object, sorted keys, no spaces
    UNIQUE (run_id, metric, tags)
);
CREATE TABLE buckets (
    series_id INTEGER NOT NULL REFERENCES series(id),
    start     INTEGER NOT NULL,        -- Unix seconds, a multiple of width
    width     INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    nonzero   INTEGER NOT NULL,
    last      REAL,
    last_time REAL,
    sketch    BLOB,                    -- codec.pack_sketch
    PRIMARY KEY (series_id, start)
) WITHOUT ROWID;
CREATE TABLE snapshots (
    run_id TEXT NOT NULL REFERENCES runs(id),
    kind   TEXT NOT NULL,              -- latest | final
    time   TEXT,
    body   TEXT NOT NULL,              -- MetricsSnapshot JSON
    PRIMARY KEY (run_id, kind)
);
CREATE TABLE verdicts (
    run_id    TEXT NOT NULL REFERENCES runs(id),
    metric    TEXT NOT NULL,
    threshold TEXT NOT NULL,
    time      REAL,                    -- stream time of the change
    ok        INTEGER NOT NULL,
    observed  REAL,
    final     INTEGER NOT NULL,
    body      TEXT NOT NULL            -- ThresholdVerdict JSON
);
CREATE INDEX verdicts_run ON verdicts (run_id, metric, threshold);
"""

_MIGRATIONS: dict[int, str] = {}
"""``from version → SQL`` to the next version; none yet (version 1 is the first)."""


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """``K6MCP_BRIDGE_STORE``, else ``$XDG_DATA_HOME/k6mcp-bridge/runs.db`` (XDG's default
    ``~/.local/share`` when the variable is unset or empty)."""
    env = os.environ if env is None else env
    if env.get(ENV_STORE):
        return Path(env[ENV_STORE]).expanduser()
    data = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "k6mcp-bridge" / "runs.db"


def describe(path: Path | str, exc: BaseException) -> StoreError:
    """One line naming the file and what is wrong with it."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        why = f"it is locked by another writer ({text}); try again, or raise store.busy_timeout"
    elif "not a database" in text or "malformed" in text:
        why = f"it is not a k6mcp-bridge store or is corrupt ({text})"
    elif isinstance(exc, PermissionError) or "readonly" in text or "permission" in text.lower():
        why = f"permission denied ({text})"
    else:
        why = text
    return StoreError(f"store {path}: {why}")


def open_writer(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The store at ``path`` opened for writing (created when new), its schema current."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise describe(path, exc) from None
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ensure_schema(conn, path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        conn.close()
        raise describe(path, exc) from None
    except StoreError:
        conn.close()
        raise
    return conn


def open_reader(path: Path) -> sqlite3.Connection:
    """The store at ``path`` opened read-only: it never blocks or changes a live writer."""
    if not path.exists():
        raise StoreError(f"store {path}: no such file (runs are written by `-p store`)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = _tables(conn)
    except sqlite3.Error as exc:
        raise describe(path, exc) from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise _too_new(path, version)
    if version < SCHEMA_VERSION or not set(_TABLES) <= tables:
        conn.close()
        what = f"schema version {version}" if version else "tables that are not a store's"
        raise StoreError(
            f"store {path} has {what}; run the bridge with -p store on it once to migrate it"
            if 0 < version < SCHEMA_VERSION
            else f"store {path} has {what}: it is not a k6mcp-bridge store"
        )
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _too_new(path, version)
    if version == 0:
        tables = _tables(conn)
        if tables:
            raise StoreError(
                f"store {path} has tables that are not a k6mcp-bridge store's "
                f"({', '.join(sorted(tables))}); choose another file with -o store.path=FILE"
            )
        for statement in _DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return
    while version < SCHEMA_VERSION:
        for statement in _MIGRATIONS[version].split(";"):
            if statement.strip():
                conn.execute(statement)
        version += 1
        conn.execute(f"PRAGMA user_version={version}")


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {name for (name,) in rows}


def _too_new(path: Path, version: int) -> StoreError:
    return StoreError(
        f"store {path} has schema version {version}; this k6mcp-bridge knows up to "
        f"{SCHEMA_VERSION}: upgrade it"
    )
