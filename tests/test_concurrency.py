"""Several writers on one log, and a writer killed mid-batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from fakes import fake_quotes

from avarn_core.predlog import PredictionLog

WRITER = Path(__file__).with_name("log_writer.py")


def _writer(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_threads_write_800_quotes(log_url):
    # The log does not exist yet: the threads also race to create it.
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            quotes = fake_quotes(100, seed=seed)
            start.wait()
            for i in range(len(quotes)):
                PredictionLog(log_url).log_quotes(quotes.iloc[[i]], source="app-single")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    ids = PredictionLog(log_url).quotes()["prediction_id"]
    assert len(ids) == 800 and ids.is_unique


def test_four_processes_write_400_quotes(log_url):
    writers = [_writer("quotes", log_url, "100", str(seed)) for seed in range(4)]
    results = [writer.communicate(timeout=120) for writer in writers]
    for writer, (_, stderr) in zip(writers, results, strict=True):
        assert writer.returncode == 0, stderr
    ids = PredictionLog(log_url).quotes()["prediction_id"]
    assert len(ids) == 400 and ids.is_unique


def test_sigkill_mid_batch_leaves_all_or_nothing(sqlite_url):
    log = PredictionLog(sqlite_url)
    log.log_quotes(fake_quotes(10, seed=99), source="cli")
    database = Path(log.engine.url.database)
    wal = database.with_name(database.name + "-wal")

    writer = _writer("batch", sqlite_url, "100000")
    deadline = time.monotonic() + 60
    # Uncommitted pages spill into the WAL while the batch is being inserted; once it holds
    # more than 1 MB the write is certainly underway (the schema and the 10 rows are far less).
    while not (wal.exists() and wal.stat().st_size > 1_000_000):
        assert writer.poll() is None, "the writer ended before it could be killed"
        assert time.monotonic() < deadline, "the batch write never started"
        time.sleep(0.002)
    os.kill(writer.pid, signal.SIGKILL)
    stdout, _ = writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        batch_rows = conn.execute("SELECT count(*) FROM quotes WHERE batch_id = 'big'").fetchone()
        batch_errors = conn.execute("SELECT count(*) FROM quote_errors").fetchone()
        total = conn.execute("SELECT count(*) FROM quotes").fetchone()
    assert (batch_rows[0], batch_errors[0]) in [(0, 0), (100_000, 10)]
    assert total[0] == 10 + batch_rows[0]
    if "committed" not in stdout:
        assert batch_rows[0] == 0  # killed before the commit: nothing of the batch
    log.log_quotes(fake_quotes(1, seed=7), source="cli")  # the log still takes writes
    assert log.count() == 11 + batch_rows[0]
