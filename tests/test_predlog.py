"""The prediction log, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from fakes import fake_errors, fake_quotes

from avarn_core import predlog
from avarn_core.db import errors_table, schema_version_table, transaction
from avarn_core.predlog import PredictionLog, PredictionLogError
from avarn_core.schema import INPUT_COLUMNS, QUOTE_KEYS


def test_quotes_round_trip_with_all_columns(log_url):
    log = PredictionLog(log_url)
    sent = fake_quotes(3)
    sent.loc[1, "warning"] = "Staden finns inte i träningsdata"
    log.log_quotes(sent, source="api", user="anna")

    got = log.quotes()
    assert len(got) == log.count() == 3
    pd.testing.assert_frame_equal(
        got[[*INPUT_COLUMNS, *QUOTE_KEYS, "latency_ms"]],
        sent[[*INPUT_COLUMNS, *QUOTE_KEYS, "latency_ms"]],
        check_dtype=False,
    )
    assert list(got["created_at"]) == list(pd.to_datetime(sent["created_at"], utc=True))
    assert str(got["created_at"].dt.tz) == "UTC"
    assert got["warning"].isna().tolist() == [True, False, True]
    assert got["warning"][1] == "Staden finns inte i träningsdata"
    assert set(got["source"]) == {"api"} and set(got["user"]) == {"anna"}
    assert got["batch_id"].isna().all()
    assert got["faktiskt_pris"].isna().all() and got["faktiskt_datum"].isna().all()


def test_created_at_defaults_to_now_and_offsets_become_utc(log_url):
    log = PredictionLog(log_url)
    before = datetime.now(UTC)
    log.log_quotes(fake_quotes(1).drop(columns="created_at"), source="cli")
    stockholm = datetime(2025, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
    log.log_quotes(fake_quotes(1).assign(created_at=[stockholm]), source="cli")

    times = log.quotes()["created_at"].sort_values().tolist()
    assert times[0] == pd.Timestamp("2025-06-01 10:00", tz="UTC")  # CEST is UTC+2
    assert before - timedelta(seconds=1) <= times[1] <= datetime.now(UTC) + timedelta(seconds=1)


def test_rejects_unknown_source_and_missing_columns(log_url):
    log = PredictionLog(log_url)
    with pytest.raises(ValueError, match="source"):
        log.log_quotes(fake_quotes(1), source="excel")
    with pytest.raises(ValueError, match="latency_ms"):
        log.log_quotes(fake_quotes(1).drop(columns="latency_ms"), source="cli")
    with pytest.raises(ValueError, match="source"):
        log.log_errors(fake_errors(1), source="web")
    assert log.count() == 0


def test_errors_round_trip(log_url):
    log = PredictionLog(log_url)
    errors = fake_errors(2)
    errors.loc[1, "row"] = None  # a single request has no spreadsheet row
    log.log_errors(errors, source="api", user="bo")
    got = log.errors()
    assert (
        got[["column", "value", "reason", "inputs"]].to_dict("records")
        == [
            {
                "column": "Antal sektioner",
                "value": "-1",
                "reason": "-1 är mindre än 1",
                "inputs": '{"antal_sektioner": "-1"}',
            }
        ]
        * 2
    )
    assert got["row"].tolist() == [2, pd.NA]
    assert set(got["source"]) == {"api"} and set(got["user"]) == {"bo"}


def test_batch_is_written_whole(log_url):
    log = PredictionLog(log_url)
    log.log_batch(fake_quotes(50), fake_errors(3), source="app-batch", batch_id="b-1")
    assert log.count() == 50
    assert set(log.quotes()["batch_id"]) == {"b-1"}
    assert len(log.errors()) == 3


def test_batch_is_all_or_nothing_when_its_errors_fail(log_url, monkeypatch):
    # Fault injection: the quotes are inserted, then inserting the errors fails.
    log = PredictionLog(log_url)
    real_insert = predlog._insert

    def insert_then_fail(conn, table, rows):
        real_insert(conn, table, rows)
        if table is errors_table:
            raise OSError("disk full")

    monkeypatch.setattr(predlog, "_insert", insert_then_fail)
    with pytest.raises(OSError, match="disk full"):
        log.log_batch(fake_quotes(20), fake_errors(2), source="app-batch", batch_id="b-2")
    monkeypatch.undo()
    assert log.count() == 0
    assert log.errors().empty


def test_batch_is_all_or_nothing_on_a_duplicate_id(log_url):
    # The duplicate is the last row: the first 2,499 rows are inserted (on PostgreSQL in
    # earlier multi-row INSERT pages) before the database refuses it.
    log = PredictionLog(log_url)
    quotes = fake_quotes(2_500)
    quotes.loc[2_499, "prediction_id"] = quotes.loc[0, "prediction_id"]
    with pytest.raises(sa.exc.IntegrityError):
        log.log_batch(quotes, fake_errors(1), source="app-batch", batch_id="b-3")
    assert log.count() == 0 and log.errors().empty


def test_error_without_reason_is_refused(log_url):
    log = PredictionLog(log_url)
    errors = fake_errors(2)
    errors.loc[1, "reason"] = None
    with pytest.raises(ValueError, match="reason"):
        log.log_errors(errors, source="api")
    assert log.errors().empty


def test_quotes_filter_by_time_and_model(log_url):
    log = PredictionLog(log_url)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    log.log_quotes(fake_quotes(10, start=start, model_version="v1"), source="cli")
    log.log_quotes(
        fake_quotes(10, start=start + timedelta(days=10), model_version="v2"), source="cli"
    )
    assert len(log.quotes(since=start + timedelta(days=5))) == 10
    assert len(log.quotes(since=datetime(2025, 1, 1, 0, 5))) == 15  # naive = UTC
    assert set(log.quotes(model_version="v1")["model_version"]) == {"v1"}
    assert len(log.quotes(since=start, model_version="v2")) == 10


def test_actuals_history_and_current_value(log_url):
    log = PredictionLog(log_url)
    quotes = fake_quotes(3)
    quotes["predicted_price"] = [42_000.0, 50_000.0, 30_000.0]  # actuals below are near these
    log.log_quotes(quotes, source="app-single")
    a, b, c = quotes["prediction_id"]

    first = log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": [a, b],
                "faktiskt_pris": [41_000, "52 300,50"],
                "datum": ["2025-04-01", "2025-04-02"],
            }
        ),
        user="analytiker",
    )
    assert first.recorded == 2 and first.ok
    correction = log.record_actuals(
        pd.DataFrame({"prediction_id": [a], "faktiskt_pris": [43_500.0], "datum": ["2025-04-09"]})
    )
    assert correction.recorded == 1

    current = log.quotes().set_index("prediction_id")
    assert current.loc[a, "faktiskt_pris"] == 43_500.0
    assert current.loc[a, "faktiskt_datum"] == pd.Timestamp("2025-04-09")
    assert current.loc[b, "faktiskt_pris"] == 52_300.5
    assert pd.isna(current.loc[c, "faktiskt_pris"])
    assert len(current) == 3  # the history does not duplicate quotes
    history = log.actuals(prediction_id=a)
    assert history["faktiskt_pris"].tolist() == [41_000.0, 43_500.0]
    assert history["user"][0] == "analytiker" and pd.isna(history["user"][1])
    assert log.quote(a)["faktiskt_pris"] == 43_500.0


def test_actuals_report_unknown_ids_and_invalid_rows(log_url):
    log = PredictionLog(log_url)
    quotes = fake_quotes(2)
    log.log_quotes(quotes, source="cli")
    a, b = quotes["prediction_id"]
    result = log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": [a, "okand-id", b, b, b, "", a],
                "faktiskt_pris": [40_000, 30_000, -5, "gratis", 0, 10, 41_000],
                "datum": ["2025-05-01", None, None, None, None, None, "1 maj"],
            }
        )
    )
    assert result.recorded == 1
    assert result.unknown_ids == ["okand-id"]
    assert result.errors == [
        "Rad 4: '-5' är inget giltigt pris (ett positivt belopp i kronor)",
        "Rad 5: 'gratis' är inget giltigt pris (ett positivt belopp i kronor)",
        "Rad 6: '0' är inget giltigt pris (ett positivt belopp i kronor)",
        "Rad 7: prediction_id saknas",
        "Rad 8: '1 maj' är inget giltigt datum (ÅÅÅÅ-MM-DD)",
    ]
    assert not result.ok
    assert len(log.actuals()) == 1
    assert log.quote(b)["faktiskt_pris"] is None


def test_actual_date_defaults_to_today(log_url):
    log = PredictionLog(log_url)
    quotes = fake_quotes(1)
    log.log_quotes(quotes, source="cli")
    log.record_actuals(
        pd.DataFrame({"prediction_id": quotes["prediction_id"], "faktiskt_pris": [12_000]})
    )
    assert log.quotes()["faktiskt_datum"].iloc[0].date() == date.today()


def test_quote_lookup(log_url):
    log = PredictionLog(log_url)
    quotes = fake_quotes(2)
    log.log_quotes(quotes, source="api")
    found = log.quote(quotes["prediction_id"][1])
    assert found["predicted_price"] == quotes["predicted_price"][1]
    assert found["stad"] == quotes["stad"][1]
    assert type(found["antal_detektorer"]) is int
    assert log.quote("finns-inte") is None


def test_check_passes_on_a_usable_log(log_url):
    PredictionLog(log_url).check()


def test_check_raises_when_the_log_is_unusable(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    with pytest.raises(PredictionLogError, match="går inte att använda"):
        PredictionLog(f"sqlite:///{blocker / 'predictions.db'}").check()
    with pytest.raises(PredictionLogError, match="går inte att använda"):
        PredictionLog(f"sqlite:///{blocker / 'predictions.db'}").ping()


def test_ping_passes_on_a_usable_log_without_counting_the_quotes(log_url):
    log = PredictionLog(log_url)
    log.log_quotes(fake_quotes(3), source="api")
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement.lower())

    sa.event.listen(log.engine, "before_cursor_execute", record)
    try:
        log.ping()
    finally:
        sa.event.remove(log.engine, "before_cursor_execute", record)

    assert statements and not any("count(" in s for s in statements)


def test_ping_raises_on_a_log_behind_the_current_schema(log_url):
    log = PredictionLog(log_url)
    log.ping()
    with transaction(log.engine) as conn:
        conn.execute(sa.delete(schema_version_table).where(schema_version_table.c.version > 1))
    with pytest.raises(PredictionLogError, match="schemaversion 1"):
        log.ping()


def test_one_quote_as_a_mapping_is_logged_as_the_same_row_as_a_one_row_table(log_url):
    log = PredictionLog(log_url)
    frame = fake_quotes(2, seed=4)
    frame.loc[1, "warning"] = "okänd stad"
    records = frame.to_dict("records")
    log.log_quotes(frame.iloc[[0]], source="api", user="crm")
    log.log_quote({**records[0], "prediction_id": "mapping-0"}, source="api", user="crm")
    log.log_quote({**records[1], "latency_ms": None}, source="app-single", batch_id="b")

    logged = log.quotes().drop(columns=["prediction_id"])
    pd.testing.assert_series_equal(logged.iloc[0], logged.iloc[1], check_names=False)
    last = log.quote(records[1]["prediction_id"])
    assert last["warning"] == "okänd stad" and last["latency_ms"] is None
    assert last["batch_id"] == "b" and last["source"] == "app-single"
    with pytest.raises(ValueError, match="source"):
        log.log_quote(records[0], source="excel")
    with pytest.raises(ValueError, match="latency_ms"):
        log.log_quote({k: v for k, v in records[0].items() if k != "latency_ms"}, source="cli")
    assert log.count() == 3


def test_actuals_far_from_the_quote_are_refused_as_typos(log_url):
    log = PredictionLog(log_url)
    quotes = fake_quotes(2)
    log.log_quotes(quotes, source="api")
    price = float(quotes["predicted_price"].iloc[0])
    result = log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": quotes["prediction_id"].tolist(),
                "faktiskt_pris": [price / 1000, 6_000_000],
            }
        )
    )
    assert result.recorded == 0
    assert "orimligt långt från offertens" in result.errors[0]
    assert "inget giltigt pris" in result.errors[1]


def test_export_neutralises_formulas(log_url, tmp_path):
    from avarn_core.predlog import export_quotes

    log = PredictionLog(log_url)
    quotes = fake_quotes(1)
    quotes["stad"] = '=HYPERLINK("http://evil","Lund")'
    log.log_quotes(quotes, source="api", user="=cmd|'/c calc'!A1")
    export_quotes(log.quotes(), tmp_path)
    text = (tmp_path / "predictions.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "'=cmd" in text
