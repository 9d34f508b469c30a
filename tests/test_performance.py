"""The performance page's figures and the actual-price inputs, without Streamlit or a database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from avarn_core.monitoring import profile_inputs
from avarn_core.performance import (
    MAX_SCATTER_POINTS,
    edited_actuals,
    editor_frame,
    error_table,
    performance_report,
    read_actuals,
    training_profile,
)
from avarn_core.settings import Settings


def logged(predictor, quotes: pd.DataFrame, *, actual: bool = True, days: int = 0):
    """Quotes as `PredictionLog.quotes()` returns them, priced by `predictor`."""
    frame = predictor.quote_frame(quotes.reset_index(drop=True))
    start = datetime(2025, 3, 3, tzinfo=UTC)
    step = timedelta(days=days / max(len(frame) - 1, 1))
    frame["created_at"] = pd.to_datetime([start + i * step for i in range(len(frame))], utc=True)
    frame["source"] = "app-batch"
    frame["batch_id"] = "b"
    frame["faktiskt_pris"] = quotes["pris"].to_numpy(float) if actual else np.nan
    for column in ("predicted_price", "confidence_interval_lower", "confidence_interval_upper"):
        frame[column] = frame[column].astype(float)
    return frame


NO_ERRORS = pd.DataFrame(columns=["batch_id", "row", "column", "value", "reason", "source"])


def test_report_figures_equal_hand_computed_ones(predictor, training_quotes):
    quotes = logged(predictor, training_quotes.sample(200, random_state=1), days=90)
    errors = pd.DataFrame(
        {
            "batch_id": ["b", "b", "b"],
            "row": [2, 2, 3],
            "column": ["Stad", "Ventilation", "Stad"],
            "value": ["", "?", ""],
            "reason": ["stad saknas", "fel", "stad saknas"],
            "source": ["app-batch"] * 3,
        }
    )
    report = performance_report(
        quotes, errors, metadata=predictor.metadata, profile=None, settings=Settings()
    )
    ape = (quotes["predicted_price"] - quotes["faktiskt_pris"]).abs() / quotes["faktiskt_pris"]
    assert report.n_quotes == report.n_actuals == 200
    assert report.overall["mape"] == pytest.approx(ape.mean())
    assert report.health.error_rate == pytest.approx(2 / 202)  # two failed rows, not three
    assert report.volume_freq == "W"  # 90 days: weekly bars
    assert report.volume["n"].sum() == 200
    assert set(report.by_interval["interval"]) <= {"Årsvis", "Kvartalsvis", "Månadsvis"}
    assert report.by_version["model_version"].tolist() == [predictor.version]
    assert report.n_pairs == 200 and len(report.pairs) == 200
    assert any("träningsprofil" in note for note in report.notes())


def test_report_on_an_empty_log_is_an_empty_state(predictor):
    columns = [
        "prediction_id",
        "created_at",
        "source",
        "model_version",
        "stad",
        "predicted_price",
        "confidence_interval_lower",
        "confidence_interval_upper",
        "faktiskt_pris",
        "antal_sektioner",
        "antal_detektorer",
        "antal_larmdon",
        "dörrhållarmagneter",
        "ventilation",
        "kvartalsvis",
        "månadsvis",
        "årsvis",
        "batch_id",
    ]
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    empty["created_at"] = pd.to_datetime(empty["created_at"], utc=True)
    report = performance_report(
        empty, NO_ERRORS, metadata=predictor.metadata, profile=None, settings=Settings()
    )
    assert not report.has_quotes and not report.has_actuals and not report.drift_judged
    assert report.alerts() == []


def test_scatter_is_sampled_beyond_the_limit(predictor, training_quotes, monkeypatch):
    monkeypatch.setattr("avarn_core.performance.MAX_SCATTER_POINTS", 50)
    quotes = logged(predictor, training_quotes.head(120))
    report = performance_report(
        quotes, NO_ERRORS, metadata=predictor.metadata, profile=None, settings=Settings()
    )
    assert report.n_pairs == 120 and len(report.pairs) == 50
    assert MAX_SCATTER_POINTS == 5_000


def test_drift_alert_and_warning_texts(predictor, training_quotes):
    profile = profile_inputs(training_quotes)
    moved = training_quotes.sample(100, random_state=2).assign(stad="Ankeborg")
    report = performance_report(
        logged(predictor, moved),
        NO_ERRORS,
        metadata=predictor.metadata,
        profile=profile,
        settings=Settings(),
    )
    assert report.drift_judged
    assert any("Drift i stad" in alert for alert in report.alerts())
    same = performance_report(
        logged(predictor, training_quotes.sample(1000, random_state=5)),
        NO_ERRORS,
        metadata=predictor.metadata,
        profile=profile,
        settings=Settings(),
    )
    assert not [a for a in same.alerts() if a.startswith("Drift")]


def test_training_profile_from_metadata_or_the_unchanged_training_file(tmp_path, training_quotes):
    recorded = {"counts": {}, "version": 1}
    assert training_profile({"training_profile": recorded}) == recorded
    data = tmp_path / "train.csv"
    training_quotes.to_csv(data, index=False)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    profile = training_profile(
        {"training_data": {"path": "train.csv", "sha256": digest}}, root=tmp_path
    )
    assert profile == profile_inputs(training_quotes)
    # A changed file is not the data the model saw: no profile rather than a wrong one.
    assert training_profile({"training_data": {"path": str(data), "sha256": "0" * 64}}) is None
    assert training_profile({"training_data": {"path": "missing.csv", "sha256": digest}}) is None
    assert training_profile({}) is None


def test_read_actuals_as_swedish_excel_writes_them():
    text = "\ufeffPrediction_ID;Faktiskt pris;Datum\r\nabc;41 000;2025-03-01\r\ndef;38000,5;\r\n"
    frame = read_actuals(text.encode("utf-8"))
    assert list(frame.columns) == ["prediction_id", "faktiskt_pris", "datum"]
    assert frame.values.tolist() == [["abc", "41 000", "2025-03-01"], ["def", "38000,5", ""]]
    comma = read_actuals("prediction_id,faktiskt_pris\nabc,41000\n".encode("cp1252"))
    assert comma.values.tolist() == [["abc", "41000"]]
    with pytest.raises(ValueError, match="Kolumn saknas: faktiskt_pris"):
        read_actuals(b"prediction_id;belopp\nabc;1\n")
    with pytest.raises(ValueError, match="tom"):
        read_actuals(b"")


def test_edited_actuals_are_the_changed_cells_only(predictor, training_quotes):
    quotes = logged(predictor, training_quotes.head(4), actual=False)
    quotes.loc[0, "faktiskt_pris"] = 30_000.0
    original = editor_frame(quotes)
    assert list(original["prediction_id"]) == list(quotes["prediction_id"][::-1])  # newest first
    assert original["created_at"].dt.tz is None  # shown in Swedish local time
    edited = original.copy()
    edited.loc[0, "faktiskt_pris"] = 41_000  # newest: filled in
    edited.loc[3, "faktiskt_pris"] = 30_000  # oldest: unchanged
    changes = edited_actuals(original, edited)
    assert changes.to_dict("records") == [
        {"prediction_id": original.loc[0, "prediction_id"], "faktiskt_pris": 41_000.0}
    ]
    edited.loc[3, "faktiskt_pris"] = 31_000  # a correction counts too
    assert len(edited_actuals(original, edited)) == 2
    assert edited_actuals(original, original).empty


def test_error_table_reads_in_swedish():
    table = error_table(
        pd.DataFrame({"reason": ["stad saknas"], "n": [2], "attempts": [56], "rate": [2 / 56]})
    )
    assert table.to_dict("records") == [
        {"Orsak": "stad saknas", "Rader": 2, "Andel av försöken": "3,6\u00a0%"}
    ]
