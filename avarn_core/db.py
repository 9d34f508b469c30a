"""Storage: the engine factory, write transactions, the log's tables and their migrations.

The same code runs on SQLite (the embedded default) and PostgreSQL (several instances), chosen
by the URL. Everything else in the package reaches the database through this module.

>>> engine = make_engine("sqlite:///logs/predictions.db")  # doctest: +SKIP
>>> with transaction(engine) as conn:  # doctest: +SKIP
...     conn.execute(quotes_table.insert(), rows)

SQLite is configured for several writers (threads and processes) on one file:

- WAL journal: readers never block the writer and a crash mid-transaction leaves the
  committed state intact (uncommitted WAL frames are ignored on the next open);
- a busy timeout, so a writer waits for the lock instead of failing at once;
- `BEGIN IMMEDIATE` for write transactions (the documented pysqlite event recipe: the driver's
  own BEGIN is switched off and SQLAlchemy's `begin` event emits ours). A deferred transaction
  that reads first and then writes can fail with "database is locked" without waiting; taking
  the write lock up front makes writers queue on the busy timeout instead.
- no connection pooling (NullPool): every checkout opens a fresh connection, so no SQLite
  connection is ever used by two threads (Streamlit runs each session in its own thread) or
  inherited across a fork. Opening a SQLite connection costs well under a millisecond.

Schema versions are kept in a `schema_version` table and applied by `ensure_schema` from the
ordered `MIGRATIONS`, inside one write transaction (DDL is transactional on both databases).
We chose this over Alembic because the log is four append-mostly tables with a linear history:
a migration is a plain function of a connection, runs with the same engine configuration as
the rest of the code, ships inside the package without an alembic.ini/env.py/script folder,
and the first use by several processes at once is serialised by the same lock that guards
writes (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, Connection, Engine, event
from sqlalchemy.pool import NullPool

from avarn_core.schema import COUNT_COLUMNS

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed 64-bit number; it names the lock that serialises migrations on PostgreSQL.
_PG_MIGRATION_LOCK = 7_263_110_424
_WRITE = "avarn_write"  # execution option that marks a write transaction

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_fork_hook_registered = False
# One lock per SQLite file: threads of one process take turns writing on a Python lock (a FIFO
# handoff) instead of polling SQLite's busy handler, whose growing sleeps (up to 100 ms each)
# made the slowest of 8 concurrent API writers wait seconds. Other processes still queue on
# BEGIN IMMEDIATE and the busy timeout.
_sqlite_write_locks: dict[str, threading.Lock] = {}
_sqlite_write_locks_guard = threading.Lock()  # not _engines_lock: make_engine holds that


# -- tables as the code sees them now (the latest schema version) ----------------------------

metadata = sa.MetaData()

quotes_table = sa.Table(
    "quotes",
    metadata,
    Column("id", sa.Integer, primary_key=True),
    Column("prediction_id", sa.Text, nullable=False, unique=True),
    Column("created_at", sa.DateTime(timezone=True), nullable=False),
    Column("source", sa.Text, nullable=False),
    Column("batch_id", sa.Text),
    Column("user", sa.Text),
    *[Column(name, sa.Integer, nullable=False) for name in COUNT_COLUMNS],
    Column("ventilation", sa.Integer, nullable=False),
    Column("stad", sa.Text, nullable=False),
    Column("kvartalsvis", sa.Integer, nullable=False),
    Column("månadsvis", sa.Integer, nullable=False),
    Column("årsvis", sa.Integer, nullable=False),
    Column("predicted_price", sa.Double, nullable=False),
    Column("confidence_interval_lower", sa.Double, nullable=False),
    Column("confidence_interval_upper", sa.Double, nullable=False),
    Column("model_version", sa.Text, nullable=False),
    Column("feature_pipeline_version", sa.Text, nullable=False),
    Column("warning", sa.Text),
    Column("latency_ms", sa.Double),
)

errors_table = sa.Table(
    "quote_errors",
    metadata,
    Column("id", sa.Integer, primary_key=True),
    Column("created_at", sa.DateTime(timezone=True), nullable=False),
    Column("source", sa.Text, nullable=False),
    Column("batch_id", sa.Text),
    Column("user", sa.Text),
    Column("row", sa.Integer),
    Column("column", sa.Text),
    Column("value", sa.Text),
    Column("reason", sa.Text, nullable=False),
    Column("inputs", sa.Text),
)

actuals_table = sa.Table(
    "actuals",
    metadata,
    Column("id", sa.Integer, primary_key=True),
    Column("prediction_id", sa.Text, sa.ForeignKey("quotes.prediction_id"), nullable=False),
    Column("faktiskt_pris", sa.Double, nullable=False),
    Column("datum", sa.Date, nullable=False),
    Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    Column("user", sa.Text),
)

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    Column("version", sa.Integer, primary_key=True, autoincrement=False),
    Column("description", sa.Text, nullable=False),
    Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


# -- migrations ------------------------------------------------------------------------------
# Migrations are history: never edit one that has shipped. To change the schema, append a new
# migration and update the table definitions above to match its result.


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_create_log(conn: Connection) -> None:
    # A frozen copy of the tables as version 1 defined them.
    md = sa.MetaData()
    sa.Table(
        "quotes",
        md,
        Column("id", sa.Integer, primary_key=True),
        Column("prediction_id", sa.Text, nullable=False, unique=True),
        Column("created_at", sa.DateTime(timezone=True), nullable=False),
        Column("source", sa.Text, nullable=False),
        Column("batch_id", sa.Text),
        Column("user", sa.Text),
        *[Column(name, sa.Integer, nullable=False) for name in COUNT_COLUMNS],
        Column("ventilation", sa.Integer, nullable=False),
        Column("stad", sa.Text, nullable=False),
        Column("kvartalsvis", sa.Integer, nullable=False),
        Column("månadsvis", sa.Integer, nullable=False),
        Column("årsvis", sa.Integer, nullable=False),
        Column("predicted_price", sa.Double, nullable=False),
        Column("confidence_interval_lower", sa.Double, nullable=False),
        Column("confidence_interval_upper", sa.Double, nullable=False),
        Column("model_version", sa.Text, nullable=False),
        Column("feature_pipeline_version", sa.Text, nullable=False),
        Column("warning", sa.Text),
        Column("latency_ms", sa.Double),
    )
    sa.Table(
        "quote_errors",
        md,
        Column("id", sa.Integer, primary_key=True),
        Column("created_at", sa.DateTime(timezone=True), nullable=False),
        Column("source", sa.Text, nullable=False),
        Column("batch_id", sa.Text),
        Column("user", sa.Text),
        Column("row", sa.Integer),
        Column("column", sa.Text),
        Column("value", sa.Text),
        Column("reason", sa.Text, nullable=False),
        Column("inputs", sa.Text),
    )
    sa.Table(
        "actuals",
        md,
        Column("id", sa.Integer, primary_key=True),
        Column("prediction_id", sa.Text, sa.ForeignKey("quotes.prediction_id"), nullable=False),
        Column("faktiskt_pris", sa.Double, nullable=False),
        Column("datum", sa.Date, nullable=False),
        Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        Column("user", sa.Text),
    )
    md.create_all(conn)


def _v2_index_for_monitoring(conn: Connection) -> None:
    # Monitoring reads a recent time window; actuals are looked up per prediction.
    for name, table, column in [
        ("ix_quotes_created_at", "quotes", "created_at"),
        ("ix_quote_errors_created_at", "quote_errors", "created_at"),
        ("ix_actuals_prediction_id", "actuals", "prediction_id"),
    ]:
        conn.execute(sa.text(f"CREATE INDEX {name} ON {table} ({column})"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "quotes, quote_errors and actuals tables", _v1_create_log),
    Migration(2, "indexes for time windows and actual lookups", _v2_index_for_monitoring),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def ensure_schema(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Create the log's tables or migrate them to the latest version; return that version.

    Safe to call from several processes at once: the whole check-and-migrate runs in one
    write transaction, so exactly one of them applies each migration and the others then see
    it applied. A migration that fails leaves the log at its previous version.
    """
    with transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        schema_version_table.create(conn, checkfirst=True)
        current = conn.scalar(sa.select(sa.func.max(schema_version_table.c.version))) or 0
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            log.info("Migrating the prediction log to version %d", migration.version)
            migration.apply(conn)
            conn.execute(
                schema_version_table.insert(),
                {
                    "version": migration.version,
                    "description": migration.description,
                    "applied_at": datetime.now(UTC),
                },
            )
            current = migration.version
    latest = max((m.version for m in migrations), default=0)
    if current > latest:
        # A newer release migrated this log; additive changes keep older code working.
        log.warning("The prediction log is at schema version %d, newer than %d", current, latest)
    return current


def schema_version(engine: Engine) -> int:
    """The version the database is at (0 when the log has never been created)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return conn.scalar(sa.select(sa.func.max(schema_version_table.c.version))) or 0


# -- engines and transactions ----------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """The engine for `url`, created (with the log's schema) on first use in this process.

    One engine per URL per process; it is safe to share between threads because each
    operation checks out its own connection.
    """
    global _fork_hook_registered
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            if not _fork_hook_registered:
                os.register_at_fork(after_in_child=_forget_engines_in_child)
                _fork_hook_registered = True
            engine = _build_engine(url)
            try:
                ensure_schema(engine)
            except Exception:
                engine.dispose()
                raise
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's connections and forget the engines (tests, shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _forget_engines_in_child() -> None:
    # A forked child must not touch the parent's pooled connections (closing a PostgreSQL
    # connection would end the parent's session): drop them without closing, per the
    # SQLAlchemy docs on pools and os.fork().
    global _engines_lock, _sqlite_write_locks, _sqlite_write_locks_guard
    _engines_lock = threading.Lock()  # the parent may have held it while forking
    _sqlite_write_locks, _sqlite_write_locks_guard = {}, threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction: commits when the block ends, rolls back if it raises.

    >>> with transaction(engine) as conn:  # doctest: +SKIP
    ...     conn.execute(quotes_table.insert(), rows)
    """
    with _write_lock(engine), engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def _write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """This process's write lock for a SQLite file; nothing for a server database."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url.database)
    with _sqlite_write_locks_guard:
        return _sqlite_write_locks.setdefault(key, threading.Lock())


def _build_engine(url: str) -> Engine:
    """A configured engine without cache or schema (use `make_engine`)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)

    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in url:
        raise ValueError("The prediction log needs a SQLite file, not an in-memory database")
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        pool_pre_ping=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Switch off the driver's own BEGIN handling; `_on_begin` emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
