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
    accuracy_view,
    edited_actuals,
    editor_frame,
    editor_key,
    error_table,
    merge_edits,
    performance_report,
    read_actuals,
    training_profile,
    version_table,
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


NBSP = "\u00a0"
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
    assert report.active.overall["mape"] == pytest.approx(ape.mean())
    assert report.health.mape == pytest.approx(ape.mean())
    assert report.health.error_rate == pytest.approx(2 / 202)  # two failed rows, not three
    assert report.volume_freq == "W"  # 90 days: weekly bars
    assert report.volume["n"].sum() == 200
    assert set(report.active.by_interval["interval"]) <= {"Årsvis", "Kvartalsvis", "Månadsvis"}
    assert report.by_version["model_version"].tolist() == [predictor.version]
    assert report.active.n_pairs == 200 and len(report.active.pairs) == 200
    assert any("träningsprofil" in note for note in report.drift_notes())
    assert report.accuracy_notes() == []  # 200 actual prices: judged, nothing to note
    assert report.other_versions == []


def test_headline_accuracy_is_the_active_versions_and_says_so(predictor, training_quotes):
    """Alerts judge the active version only; the headline figures must be the same ones, with
    older versions compared per version, not mixed in."""
    active = logged(predictor, training_quotes.sample(60, random_state=1))
    older = logged(predictor, training_quotes.sample(40, random_state=2))
    older["model_version"] = "v0000"
    older["faktiskt_pris"] = older["predicted_price"] * 2  # the old model was far off
    quotes = pd.concat([older, active], ignore_index=True)
    report = performance_report(
        quotes, NO_ERRORS, metadata=predictor.metadata, profile=None, settings=Settings()
    )
    ape = (active["predicted_price"] - active["faktiskt_pris"]).abs() / active["faktiskt_pris"]
    assert report.n_quotes == 100 and report.n_actuals == 100  # volume: every version
    assert report.active.n_actuals == report.health.n_actuals == 60
    assert report.active.overall["mape"] == pytest.approx(ape.mean()) == report.health.mape
    assert report.other_versions == ["v0000"]
    assert predictor.version in report.scope_text() and "v0000" in report.scope_text()
    table = version_table(report.by_version, predictor.version)
    assert table["Modellversion"].tolist() == ["v0000", f"{predictor.version} (aktiv)"]
    assert table["Medelfel (MAPE)"].iloc[0] == "50,0\u00a0%"
    assert accuracy_view(quotes, "v0000").n_actuals == 40
    assert accuracy_view(quotes).n_actuals == 100
    # Too few actual prices for the checks: the note belongs with accuracy, not with drift.
    few = performance_report(
        active.head(10), NO_ERRORS, metadata=predictor.metadata, profile=None, settings=Settings()
    )
    assert any("för få faktiska priser" in n for n in few.accuracy_notes())
    assert not any("faktiska priser" in n for n in few.drift_notes())


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
    assert report.active.n_pairs == 120 and len(report.active.pairs) == 50
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
    assert any("Drift i stad: PSI utöver slumpen" in alert for alert in report.alerts())
    same = performance_report(
        logged(predictor, training_quotes.sample(1000, random_state=5)),
        NO_ERRORS,
        metadata=predictor.metadata,
        profile=profile,
        settings=Settings(),
    )
    assert not [a for a in same.alerts() if a.startswith("Drift")]


def test_drift_warnings_judge_psi_beyond_sampling_and_name_inputs_in_swedish(
    predictor, training_quotes
):
    report = performance_report(
        logged(predictor, training_quotes.head(40)),
        NO_ERRORS,
        metadata=predictor.metadata,
        profile=profile_inputs(training_quotes),
        settings=Settings(),
    )
    report.health.drift = pd.DataFrame(
        {
            "input": ["antal_detektorer", "testintervall", "stad"],
            "psi": [0.15, 0.30, 0.50],
            "status": ["varning", "ok", "larm"],
            "n": [40] * 3,
            "unseen_share": [np.nan, np.nan, 0.0],
            "sampling_psi": [0.03, 0.25, 0.05],
            "beyond_sampling": [0.12, 0.05, 0.45],
        }
    )
    # testintervall's raw PSI 0,30 is mostly sampling: no warning, as its status says.
    assert report.drift_warnings() == [
        "Drift i antal detektorer: PSI utöver slumpen 0,120 (PSI 0,150, varav slumpen ~0,030; "
        "varningsnivå 0,1)"
    ]


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


def test_read_actuals_prefers_exact_names_and_refuses_to_guess(caplog):
    # A customer's own id and the quoted price next to the exact columns: the exact ones win.
    both = "id;prediction_id;pris;faktiskt_pris\r\nK-17;abc;40000;41000\r\n"
    frame = read_actuals(both.encode("utf-8"))
    assert frame.to_dict("records") == [{"prediction_id": "abc", "faktiskt_pris": "41000"}]
    alias = read_actuals("Prediktions-id;Avtalat pris\r\nabc;41000\r\n".encode("cp1252"))
    assert alias.to_dict("records") == [{"prediction_id": "abc", "faktiskt_pris": "41000"}]
    with pytest.raises(ValueError, match="Flera kolumner kan vara faktiskt_pris: 'pris', "):
        read_actuals(b"prediction_id;pris;avtalat_pris\r\nabc;1;2\r\n")
    with pytest.raises(ValueError, match="Kolumnen prediction_id finns flera gånger"):
        read_actuals(b"prediction_id;Prediction ID;faktiskt_pris\r\nabc;abd;2\r\n")
    # A parser error in Swedish, naming the line; pandas' own words go to the log.
    caplog.set_level("INFO", logger="avarn_core.performance")
    with pytest.raises(ValueError) as raised:
        read_actuals(b"prediction_id;faktiskt_pris\r\nabc;41000\r\ndef;41;500;x\r\n")
    assert str(raised.value).startswith("Filen kunde inte läsas som CSV: rad 3 har 4 fält")
    assert "Expected" not in str(raised.value) and "Expected 2 fields" in caplog.text
    with pytest.raises(ValueError, match="kunde inte läsas som text"):
        read_actuals(b"prediction_id;faktiskt_pris\r\n\x81\x8d;1\r\n")


def test_edited_actuals_are_the_changed_cells_only(predictor, training_quotes):
    quotes = logged(predictor, training_quotes.head(4), actual=False)
    quotes.loc[0, "faktiskt_pris"] = 30_000.0
    original = editor_frame(quotes)
    assert list(original.index) == list(quotes["prediction_id"][::-1])  # newest first, by id
    assert original["created_at"].dt.tz is None  # shown in Swedish local time
    assert original["registrerat"].iloc[-1] == f"30{NBSP}000{NBSP}kr"
    assert original["registrerat"].iloc[0] == "" and original["faktiskt_pris"].isna().all()
    newest, oldest = original.index[0], original.index[-1]
    edited = original.copy()
    edited.loc[newest, "faktiskt_pris"] = 41_000  # newest: filled in
    edited.loc[oldest, "faktiskt_pris"] = 30_000  # oldest: the recorded price, no change
    changes = edited_actuals(quotes, edited)
    assert changes.to_dict("records") == [{"prediction_id": newest, "faktiskt_pris": 41_000.0}]
    edited.loc[oldest, "faktiskt_pris"] = 30_001  # a correction of one krona counts
    assert len(edited_actuals(quotes, edited)) == 2
    assert edited_actuals(quotes, original).empty  # empty cells are no change


def test_edited_actuals_compare_whole_kronor_exactly(predictor, training_quotes):
    quotes = logged(predictor, training_quotes.head(2), actual=False)
    quotes["faktiskt_pris"] = [1_000_000.0, 38_000.5]
    edited = editor_frame(quotes)
    first, second = quotes["prediction_id"]
    edited.loc[first, "faktiskt_pris"] = 1_000_004  # np.isclose called this unchanged
    edited.loc[second, "faktiskt_pris"] = 38_000  # whole kronor, not the logged 38 000,50
    changes = edited_actuals(quotes, edited).set_index("prediction_id")["faktiskt_pris"]
    assert changes.to_dict() == {first: 1_000_004.0, second: 38_000.0}
    edited.loc[first, "faktiskt_pris"] = 1_000_000  # typed as recorded: nothing to save
    assert first not in set(edited_actuals(quotes, edited)["prediction_id"])


def test_edits_stay_on_their_quote_when_a_new_quote_shifts_the_rows(predictor, training_quotes):
    quotes = logged(predictor, training_quotes.head(5), actual=False)
    before, after = quotes.iloc[:4], quotes  # then the fifth quote is logged
    shown = editor_frame(before, rows=3)
    edited = shown.copy()
    target = shown.index[0]
    edited.loc[target, "faktiskt_pris"] = 41_000  # typed on the newest row
    pending = edited_actuals(before, edited)

    shifted = editor_frame(after, pending=pending, rows=3)
    assert shifted.index[0] != target  # the new quote is on top now ...
    assert shifted.loc[target, "faktiskt_pris"] == 41_000  # ... and the edit kept its quote
    assert shifted["faktiskt_pris"].notna().sum() == 1
    assert editor_key(shifted) != editor_key(shown)  # a new widget: no positional edits
    assert editor_key(shown, generation=1) != editor_key(shown)  # reset after a save
    assert edited_actuals(after, shifted).to_dict("records") == [
        {"prediction_id": target, "faktiskt_pris": 41_000.0}
    ]
    # Aged out of the editor's rows: the pending edit is dropped, never moved to another row.
    gone = editor_frame(after, pending=pending, rows=1)
    assert target not in gone.index and gone["faktiskt_pris"].isna().all()


def test_merge_edits_maps_row_positions_to_the_ids_that_were_shown():
    shown = ["c", "b", "a"]  # newest first, as the editor showed them
    pending = merge_edits(None, shown, {"0": {"faktiskt_pris": 41_000.4}, 2: {"stad": "x"}})
    assert pending.to_dict("records") == [{"prediction_id": "c", "faktiskt_pris": 41_000.0}]
    # A new quote "d" arrived; the next edit still refers to the rows as they were shown then.
    pending = merge_edits(pending, shown, {1: {"faktiskt_pris": 9_000}})
    assert dict(zip(pending["prediction_id"], pending["faktiskt_pris"], strict=True)) == {
        "c": 41_000.0,
        "b": 9_000.0,
    }
    cleared = merge_edits(pending, shown, {0: {"faktiskt_pris": None}, 7: {"faktiskt_pris": 1}})
    assert cleared["prediction_id"].tolist() == ["b"]  # a cleared cell; a row that is not there


def test_error_table_reads_in_swedish():
    table = error_table(
        pd.DataFrame({"reason": ["stad saknas"], "n": [2], "attempts": [56], "rate": [2 / 56]})
    )
    assert table.to_dict("records") == [
        {"Orsak": "stad saknas", "Rader": 2, "Andel av försöken": "3,6\u00a0%"}
    ]
