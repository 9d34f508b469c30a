"""Engines, write transactions and schema migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from fakes import fake_quotes

from avarn_core import db, predlog
from avarn_core.predlog import PredictionLog


def test_nothing_happens_at_import(tmp_path):
    code = "import avarn_core.cli, avarn_core.db, avarn_core.monitoring, avarn_core.predlog"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []  # no logs/ folder, no database file


def test_engine_is_cached_per_url_and_creates_the_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'log.db'}"
    engine = db.make_engine(url)
    assert db.make_engine(url) is engine
    assert (tmp_path / "deep" / "er" / "log.db").exists()
    assert db.schema_version(engine) == db.SCHEMA_VERSION
    db.dispose_engines()
    assert db.make_engine(url) is not engine
    db.dispose_engines()


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValueError, match="SQLite file"):
        db.make_engine("sqlite://")


def test_sqlite_connections_are_configured(sqlite_url):
    with db.make_engine(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_write_transaction_takes_the_write_lock_up_front(sqlite_url):
    # With BEGIN IMMEDIATE the lock is held from the start of the transaction, before any
    # write: another writer that will not wait is refused. A deferred BEGIN would let it in.
    engine = db.make_engine(sqlite_url)
    path = engine.url.database
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with db.transaction(engine), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_reads_do_not_block_while_a_write_is_open(sqlite_url):
    log = PredictionLog(sqlite_url)
    log.log_quotes(fake_quotes(3), source="cli")
    with db.transaction(log.engine) as conn:
        conn.execute(db.quotes_table.delete())
        assert log.count() == 3  # a reader sees the last committed state, without waiting


def test_transaction_rolls_back_on_error(log_url):
    log = PredictionLog(log_url)
    rows = predlog._quote_rows(fake_quotes(5), source="cli", batch_id=None, user=None)
    with pytest.raises(RuntimeError), db.transaction(log.engine) as conn:
        conn.execute(db.quotes_table.insert(), rows)
        raise RuntimeError("something went wrong after the insert")
    assert log.count() == 0


def test_old_log_is_migrated_without_losing_rows(log_url):
    # Build a log at schema version 1 with rows in it, as an earlier release left it.
    old = db._build_engine(log_url)
    assert db.ensure_schema(old, db.MIGRATIONS[:1]) == 1
    quotes = fake_quotes(250)
    with db.transaction(old) as conn:
        conn.execute(
            db.quotes_table.insert(),
            predlog._quote_rows(quotes, source="cli", batch_id=None, user=None),
        )
    assert db.schema_version(old) == 1
    old.dispose()

    log = PredictionLog(log_url)  # first use migrates
    assert db.schema_version(log.engine) == db.SCHEMA_VERSION == 2
    assert sorted(log.quotes()["prediction_id"]) == sorted(quotes["prediction_id"])
    indexes = {ix["name"] for ix in sa.inspect(log.engine).get_indexes("quotes")}
    assert "ix_quotes_created_at" in indexes


def test_a_later_migration_keeps_rows_and_a_failing_one_changes_nothing(log_url):
    log = PredictionLog(log_url)
    log.log_quotes(fake_quotes(40), source="cli")

    def fail(conn):
        conn.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        db.ensure_schema(log.engine, [*db.MIGRATIONS, db.Migration(3, "broken", fail)])
    assert db.schema_version(log.engine) == 2
    assert not sa.inspect(log.engine).has_table("half_done")  # DDL rolled back too

    def add_column(conn):
        conn.execute(sa.text("ALTER TABLE quotes ADD COLUMN kanal TEXT"))

    assert db.ensure_schema(log.engine, [*db.MIGRATIONS, db.Migration(3, "kanal", add_column)]) == 3
    assert log.count() == 40
    assert "kanal" in {c["name"] for c in sa.inspect(log.engine).get_columns("quotes")}
    assert db.ensure_schema(log.engine) == 3  # older code on a newer log: warns, carries on


def test_no_sqlite_connection_passes_from_one_thread_to_another(sqlite_url):
    # Each thread checks out, uses and returns a connection in turn. A pool would hand the
    # second thread the first one's connection; the log must open a fresh one instead.
    engine = db.make_engine(sqlite_url)
    used = []

    def work() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            used.append(conn.connection.dbapi_connection)

    for _ in range(3):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert len({id(c) for c in used}) == 3


def test_threads_of_one_process_take_turns_on_a_python_lock_per_sqlite_file(sqlite_url, pg_url):
    # Writers in one process queue on a lock instead of polling SQLite's busy handler.
    engine = db.make_engine(sqlite_url)
    lock = db._write_lock(engine)
    assert lock is db._write_lock(db._build_engine(sqlite_url))  # same file, same lock
    entered = threading.Event()

    def write() -> None:
        with db.transaction(engine) as conn:
            entered.set()
            conn.exec_driver_sql("SELECT 1")

    with lock:  # another thread of this process is writing
        thread = threading.Thread(target=write)
        thread.start()
        assert not entered.wait(0.3)  # waits on the lock, not inside SQLite
    thread.join(5)
    assert entered.is_set()
    assert not lock.locked()
    assert not isinstance(db._write_lock(db.make_engine(pg_url)), type(lock))
