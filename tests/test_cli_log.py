"""`avarn monitor`, `avarn export-log` and `avarn actuals`, called in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fakes import fake_errors, fake_quotes

from avarn_core import cli
from avarn_core.monitoring import profile_inputs
from avarn_core.predlog import PredictionLog
from avarn_core.schema import INPUT_COLUMNS
from avarn_core.settings import get_settings

TRAINING = fake_quotes(200, seed=11)[INPUT_COLUMNS]


@pytest.fixture
def env(sqlite_url, tmp_path, monkeypatch):
    """AVARN_DB_URL pointing at a fresh log; a models folder whose active model is v7."""
    models = tmp_path / "models"
    (models / "v0007").mkdir(parents=True)
    (models / "ACTIVE").write_text("v0007\n", encoding="utf-8")
    metadata = {"holdout": {"mape": 0.05}, "training_profile": profile_inputs(TRAINING)}
    (models / "v0007" / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    monkeypatch.setenv("AVARN_DB_URL", sqlite_url)
    get_settings.cache_clear()
    yield {"log": PredictionLog(sqlite_url), "models": str(models)}
    get_settings.cache_clear()


def _log_rated(
    log, *, days_ago: float = 1, error: float = 0.05, inputs=TRAINING, model_version: str = "v0007"
) -> None:
    """Quotes on the training inputs whose actuals lie `error` below the price (APE = error;
    inside the ±15 % interval while error < 0.13)."""
    quotes = fake_quotes(
        len(inputs), model_version=model_version, start=datetime.now(UTC) - timedelta(days=days_ago)
    )
    quotes[INPUT_COLUMNS] = inputs.to_numpy()
    log.log_quotes(quotes, source="api")
    actual = quotes["predicted_price"] / (1 + error)
    log.record_actuals(
        pd.DataFrame({"prediction_id": quotes["prediction_id"], "faktiskt_pris": actual})
    )


def _monitor(env, *args: str) -> int:
    return cli.main(["monitor", "--models-dir", env["models"], *args])


def test_monitor_exits_0_on_a_healthy_log(env, capsys):
    _log_rated(env["log"])
    env["log"].log_errors(fake_errors(2), source="app-batch", batch_id="b")  # 2/202 = 1 %
    assert _monitor(env) == 0
    out = capsys.readouterr().out
    assert "Modell v0007: 200 offerter, 200 med faktiskt pris, 2 fel" in out
    assert "Inga larm." in out


def test_monitor_exits_1_on_a_degraded_model(env, capsys):
    _log_rated(env["log"], error=0.3)  # APE 0.3 and every actual outside its interval
    assert _monitor(env, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {c["name"] for c in report["checks"] if c["status"] == "larm"} == {"täckning", "mape"}
    assert report["coverage"] == 0.0 and report["mape"] == pytest.approx(0.3)


def test_monitor_exits_1_on_drifted_inputs(env, capsys):
    drifted = TRAINING.assign(antal_detektorer=TRAINING["antal_detektorer"] * 5 + 2_000)
    _log_rated(env["log"], inputs=drifted)
    assert _monitor(env, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"] if c["status"] == "larm"] == [
        "drift antal_detektorer"
    ]


def test_monitor_exits_1_on_a_high_error_rate(env):
    _log_rated(env["log"])
    env["log"].log_errors(fake_errors(20), source="app-batch", batch_id="b")  # 20/220 = 9 %
    assert _monitor(env) == 1


def test_monitor_looks_only_at_the_window_and_the_active_model(env):
    _log_rated(env["log"], days_ago=60, error=0.3)  # bad, but before the window
    _log_rated(env["log"], error=0.3, model_version="v6")  # bad, but an older model
    _log_rated(env["log"])
    assert _monitor(env, "--since", "30") == 0
    assert _monitor(env, "--since", "90") == 1


def test_monitor_without_an_active_model_exits_2(env, tmp_path, capsys):
    assert cli.main(["monitor", "--models-dir", str(tmp_path / "tom")]) == 2
    assert "aktiva modellen" in capsys.readouterr().err


def test_export_log_writes_csv_and_one_jsonl_per_utc_day(env, tmp_path):
    log = env["log"]
    late = fake_quotes(2, start=datetime(2025, 3, 3, 23, 59, tzinfo=UTC))  # 23:59, 00:00 UTC
    log.log_quotes(late, source="cli")
    log.log_quotes(fake_quotes(3, start=datetime(2025, 3, 5, 12, 0, tzinfo=UTC)), source="api")
    log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": late["prediction_id"][:1],
                "faktiskt_pris": [41_000],
                "datum": ["2025-03-20"],
            }
        )
    )
    out = tmp_path / "export"

    assert cli.main(["export-log", "--out", str(out)]) == 0

    assert sorted(p.name for p in out.iterdir()) == [
        "predictions.csv",
        "predictions_2025-03-03.jsonl",
        "predictions_2025-03-04.jsonl",
        "predictions_2025-03-05.jsonl",
    ]
    table = pd.read_csv(out / "predictions.csv")
    assert len(table) == 5 and set(INPUT_COLUMNS) <= set(table.columns)
    lines = (out / "predictions_2025-03-03.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 1
    assert first["prediction_id"] == late["prediction_id"][0]
    assert first["created_at"] == "2025-03-03T23:59:00+00:00"
    assert first["dörrhållarmagneter"] == int(late["dörrhållarmagneter"][0])
    assert (first["faktiskt_pris"], first["faktiskt_datum"]) == (41000.0, "2025-03-20")
    second = json.loads((out / "predictions_2025-03-04.jsonl").read_text(encoding="utf-8"))
    assert second["faktiskt_pris"] is None and second["created_at"].startswith("2025-03-04T00:00")
    assert len((out / "predictions_2025-03-05.jsonl").read_text().splitlines()) == 3


def test_actuals_from_a_swedish_excel_csv(env, tmp_path, capsys):
    quotes = fake_quotes(2)
    env["log"].log_quotes(quotes, source="app-batch", batch_id="b")
    a, b = quotes["prediction_id"]
    path = tmp_path / "priser.csv"
    text = f"prediction_id;faktiskt_pris;datum\r\n{a};45 230,50;2025-04-01\r\n{b};38000;\r\n"
    path.write_bytes(text.encode("cp1252"))

    assert cli.main(["actuals", "--data", str(path)]) == 0
    assert "Registrerade faktiska priser: 2" in capsys.readouterr().out
    assert env["log"].quote(a)["faktiskt_pris"] == 45_230.5


def test_actuals_exit_1_on_unknown_ids_and_bad_rows(env, tmp_path, capsys):
    quotes = fake_quotes(1)
    env["log"].log_quotes(quotes, source="cli")
    path = tmp_path / "priser.csv"
    path.write_text(
        f"\ufeffprediction_id,faktiskt_pris\n{quotes['prediction_id'][0]},40000\n"
        "finns-inte,1000\nfinns-inte-heller,-1\n",
        encoding="utf-8",
    )
    assert cli.main(["actuals", "--data", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Registrerade faktiska priser: 1" in out
    assert "Okänt prediction_id (inte registrerat): finns-inte" in out
    assert "Rad 4: '-1' är inget giltigt pris" in out


def test_actuals_exit_1_when_a_column_is_missing(env, tmp_path, capsys):
    path = tmp_path / "priser.csv"
    path.write_text("id;pris\nabc;100\n", encoding="utf-8")
    assert cli.main(["actuals", "--data", str(path)]) == 1
    assert "prediction_id" in capsys.readouterr().err
