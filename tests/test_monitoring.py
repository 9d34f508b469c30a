"""Monitoring figures against hand computations on a log seeded with known errors."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from fakes import fake_quotes

from avarn_core import monitoring
from avarn_core.monitoring import accuracy, drift, error_rate, profile_inputs
from avarn_core.predlog import PredictionLog
from avarn_core.settings import Settings

# Five quotes; the first four get actual prices chosen so every figure is easy by hand.
#   id  predicted  interval     actual  (p - a)/a    APE   inside  width/p   stad       model
#   q1     110     [100, 120]    100     +0.10       0.10   yes    20/110   Stockholm  v1
#   q2     150     [140, 160]    200     -0.25       0.25   no     20/150   Stockholm  v1
#   q3      50     [ 45,  55]     50      0.00       0.00   yes    10/50    Lund       v1
#   q4     440     [400, 480]    400     +0.10       0.10   yes    80/440   Lund       v2
#   q5     300     [250, 350]     -        (no actual: left out of every figure)
SEED = pd.DataFrame(
    {
        "prediction_id": ["q1", "q2", "q3", "q4", "q5"],
        "predicted_price": [110.0, 150.0, 50.0, 440.0, 300.0],
        "confidence_interval_lower": [100.0, 140.0, 45.0, 400.0, 250.0],
        "confidence_interval_upper": [120.0, 160.0, 55.0, 480.0, 350.0],
        "stad": ["Stockholm", "Stockholm", "Lund", "Lund", "Lund"],
        "model_version": ["v1", "v1", "v1", "v2", "v2"],
        "årsvis": [1, 1, 0, 0, 1],
        "kvartalsvis": [0, 0, 0, 1, 0],
        "månadsvis": [0, 0, 1, 0, 0],
        "created_at": pd.to_datetime(
            [
                "2025-03-03 09:00",
                "2025-03-09 23:00",
                "2025-03-10 07:00",
                "2025-03-12 12:00",
                "2025-03-12 13:00",
            ],
            utc=True,
        ),
        "source": ["app-single", "app-single", "api", "api", "api"],
    }
)
ACTUALS = {"q1": 100.0, "q2": 200.0, "q3": 50.0, "q4": 400.0}


@pytest.fixture
def seeded(log_url) -> pd.DataFrame:
    """The quotes above, logged and read back, with q2's actual first recorded wrongly."""
    log = PredictionLog(log_url)
    quotes = fake_quotes(5)
    for column in SEED.columns.drop("source"):
        quotes[column] = SEED[column]
    for source in ("app-single", "api"):
        log.log_quotes(quotes[SEED["source"] == source], source=source)
    log.record_actuals(pd.DataFrame({"prediction_id": ["q2"], "faktiskt_pris": [150.0]}))
    log.record_actuals(
        pd.DataFrame({"prediction_id": list(ACTUALS), "faktiskt_pris": list(ACTUALS.values())})
    )
    return log.quotes()


def test_overall_accuracy_equals_hand_computation(seeded):
    got = accuracy(seeded).iloc[0]
    assert got["n"] == 4
    assert got["mape"] == pytest.approx((0.10 + 0.25 + 0.00 + 0.10) / 4)  # 0.1125
    assert got["median_ape"] == pytest.approx((0.10 + 0.10) / 2)  # middle of 0, .1, .1, .25
    assert got["bias"] == pytest.approx((0.10 - 0.25 + 0.00 + 0.10) / 4)  # -0.0125
    assert got["coverage"] == pytest.approx(3 / 4)
    assert got["mean_relative_width"] == pytest.approx(
        (20 / 110 + 20 / 150 + 10 / 50 + 80 / 440) / 4
    )


def test_grouped_accuracy_equals_hand_computation(seeded):
    by_city = accuracy(seeded, by="stad").set_index("stad")
    assert by_city.loc["Stockholm", "mape"] == pytest.approx((0.10 + 0.25) / 2)
    assert by_city.loc["Stockholm", "coverage"] == pytest.approx(1 / 2)
    assert by_city.loc["Lund", "mape"] == pytest.approx((0.00 + 0.10) / 2)
    assert by_city.loc["Lund", "coverage"] == 1.0

    by_model = accuracy(seeded, by="model_version").set_index("model_version")
    assert by_model["n"].to_dict() == {"v1": 3, "v2": 1}
    assert by_model.loc["v1", "bias"] == pytest.approx((0.10 - 0.25 + 0.00) / 3)

    by_week = accuracy(seeded, by="week")  # q2 on Sunday 23:00 UTC is still week 10
    assert by_week["week"].tolist() == [pd.Timestamp("2025-03-03"), pd.Timestamp("2025-03-10")]
    assert by_week["mape"].tolist() == pytest.approx([(0.10 + 0.25) / 2, (0.00 + 0.10) / 2])

    by_interval = accuracy(seeded, by="interval").set_index("interval")
    assert by_interval["n"].to_dict() == {"kvartalsvis": 1, "månadsvis": 1, "årsvis": 2}
    assert by_interval.loc["årsvis", "coverage"] == pytest.approx(1 / 2)


def test_accuracy_without_actuals_and_bad_grouping():
    empty = accuracy(pd.DataFrame(columns=SEED.columns).assign(faktiskt_pris=[]))
    assert empty["n"].tolist() == [0] and empty["mape"].isna().all()
    with pytest.raises(ValueError, match="by must be"):
        accuracy(SEED.assign(faktiskt_pris=1.0), by="kund")


def test_pairs(seeded):
    got = monitoring.pairs(seeded)
    assert got["prediction_id"].tolist() == ["q1", "q2", "q3", "q4"]
    assert got["faktiskt_pris"].tolist() == [100.0, 200.0, 50.0, 400.0]
    assert got["inside"].tolist() == [True, False, True, True]


def test_volume_per_week_and_source(seeded):
    got = monitoring.volume(seeded, freq="W")
    assert got.to_dict("records") == [
        {"period": pd.Timestamp("2025-03-03"), "source": "app-single", "n": 2},
        {"period": pd.Timestamp("2025-03-10"), "source": "api", "n": 3},
    ]


def test_error_rate_counts_failed_rows_not_error_messages():
    quotes = pd.DataFrame({"prediction_id": [f"q{i}" for i in range(7)]})
    errors = pd.DataFrame(
        {
            # Row 2 of batch b has two bad cells: one failed row. The last is a single request.
            "batch_id": ["b", "b", "b", None],
            "row": pd.array([2, 2, 3, None], dtype="Int64"),
            "column": ["Stad", "Ventilation", "Stad", "antal_sektioner"],
            "reason": [
                "stad saknas",
                "'kanske' ska vara Ja eller Nej",
                "stad saknas",
                "0 är mindre än 1",
            ],
            "source": ["app-batch", "app-batch", "app-batch", "api"],
        }
    )
    overall = error_rate(quotes, errors, by=None).iloc[0]
    assert (overall["n"], overall["attempts"]) == (3, 7 + 3)
    assert overall["rate"] == pytest.approx(3 / 10)
    by_reason = error_rate(quotes, errors).set_index("reason")
    assert by_reason.loc["stad saknas", "n"] == 2
    assert by_reason.loc["stad saknas", "rate"] == pytest.approx(2 / 10)
    assert by_reason["n"].sum() == 4  # row 2 counts once under each of its two reasons
    assert error_rate(quotes.iloc[:0], errors.iloc[:0], by=None)["rate"].isna().all()


def test_profile_of_training_inputs():
    inputs = pd.DataFrame(
        {
            "antal_sektioner": range(1, 11),
            "antal_detektorer": [0] * 6 + [5] * 4,
            "antal_larmdon": [3] * 10,
            "dörrhållarmagneter": range(10),
            "ventilation": [1] * 7 + [0] * 3,
            "stad": ["Stockholm"] * 5 + ["Malmö"] * 3 + ["Lund"] * 2,
            "årsvis": [1] * 5 + [0] * 5,
            "kvartalsvis": [0] * 5 + [1] * 5,
            "månadsvis": [0] * 10,
        }
    )
    profile = profile_inputs(inputs)
    # Deciles of 1..10 by linear interpolation: 1 + 9p for p = 0.1 .. 0.9; one value per bin.
    assert profile["counts"]["antal_sektioner"]["edges"] == pytest.approx(
        [1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1]
    )
    assert profile["counts"]["antal_sektioner"]["shares"] == pytest.approx([0.1] * 10)
    # Ties collapse: the deciles of six 0s and four 5s are 0 (p <= 0.5), 2 (p = 0.6), 5.
    assert profile["counts"]["antal_detektorer"]["edges"] == pytest.approx([0.0, 2.0, 5.0])
    assert profile["counts"]["antal_detektorer"]["shares"] == pytest.approx([0.6, 0.0, 0.4, 0.0])
    assert profile["ventilation"] == {"0": 0.3, "1": 0.7}
    assert profile["testintervall"] == {"årsvis": 0.5, "kvartalsvis": 0.5, "månadsvis": 0.0}
    assert profile["stad"] == {"Lund": 0.2, "Malmö": 0.3, "Stockholm": 0.5}
    assert json.loads(json.dumps(profile)) == profile
    assert (drift(profile, inputs)["psi"] == 0).all()  # no drift against itself


# A profile written out by hand and ten recent quotes, so each PSI can be computed by hand.
PROFILE = {
    "version": 1,
    "n": 1000,
    "counts": {
        "antal_sektioner": {"edges": [2, 5], "shares": [0.5, 0.3, 0.2]},
        "antal_detektorer": {"edges": [10], "shares": [0.5, 0.5]},
        "antal_larmdon": {"edges": [10], "shares": [0.5, 0.5]},
        "dörrhållarmagneter": {"edges": [10], "shares": [0.5, 0.5]},
    },
    "ventilation": {"0": 0.5, "1": 0.5},
    "testintervall": {"årsvis": 0.6, "kvartalsvis": 0.3, "månadsvis": 0.1},
    "stad": {"Stockholm": 0.5, "Göteborg": 0.5},
}
RECENT = pd.DataFrame(
    {
        "antal_sektioner": [1, 2, 2, 1, 3, 4, 5, 5, 6, 9],  # bins (≤2, ≤5, >5): 4, 4, 2
        "antal_detektorer": [3] * 10,  # all ≤ 10: the upper bin is empty
        "antal_larmdon": [5] * 5 + [50] * 5,
        "dörrhållarmagneter": [5] * 5 + [50] * 5,
        "ventilation": [0, 1] * 5,
        "årsvis": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        "kvartalsvis": [0, 0, 0, 1, 1, 1, 0, 0, 0, 0],
        "månadsvis": [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        "stad": ["stockholm"] * 4
        + ["Göteborg", "Göteborg", "goteborg", "GOTEBORG"]
        + ["Kiruna", "Kiruna"],
    }
)


def test_psi_equals_hand_computation():
    def term(recent: float, trained: float) -> float:
        return (recent - trained) * math.log(recent / trained)

    eps = 1e-4  # the documented PSI_EPSILON: 0.01 % for an empty bin
    expected = {
        "antal_sektioner": term(0.4, 0.5) + term(0.4, 0.3) + term(0.2, 0.2),  # 0.0511
        "antal_detektorer": term(1.0, 0.5) + term(eps, 0.5),  # empty bin -> epsilon: 4.6043
        "antal_larmdon": 0.0,
        "dörrhållarmagneter": 0.0,
        "ventilation": 0.0,
        "testintervall": term(0.3, 0.6) + term(0.3, 0.3) + term(0.4, 0.1),  # 0.6238
        # "goteborg"/"GOTEBORG" are Göteborg; Kiruna is unseen: a bin with training share 0.
        "stad": term(0.4, 0.5) + term(0.4, 0.5) + term(0.2, eps),  # 1.5640
    }
    got = drift(PROFILE, RECENT).set_index("input")
    assert got["psi"].to_dict() == pytest.approx(expected)
    assert got["psi"]["antal_sektioner"] == pytest.approx(0.0510826, abs=1e-6)
    assert got["status"].to_dict() == {
        "antal_sektioner": "ok",
        "antal_detektorer": "larm",
        "antal_larmdon": "ok",
        "dörrhållarmagneter": "ok",
        "ventilation": "ok",
        "testintervall": "larm",
        "stad": "larm",
    }
    assert got.loc["stad", "unseen_share"] == pytest.approx(0.2)
    assert got["n"].eq(10).all()


def test_psi_status_bands():
    assert [monitoring.psi_status(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "ok",
        "ok",
        "varning",
        "varning",
        "larm",
        "larm",
    ]
    assert drift(PROFILE, RECENT.iloc[:0])["status"].eq("ingen data").all()


# -- health ------------------------------------------------------------------------------------


def _rated_quotes(n: int, *, miss_every: int = 0, error: float = 0.05) -> pd.DataFrame:
    """n quotes of model v1 with actuals: APE = `error` each; every `miss_every`-th actual
    lies outside its interval."""
    quotes = fake_quotes(n, model_version="v1")
    actual = quotes["predicted_price"] / (1 + error)
    if miss_every:
        outside = np.arange(n) % miss_every == 0
        actual = actual.where(~outside, quotes["confidence_interval_upper"] * 1.01)
    return quotes.assign(faktiskt_pris=actual)


def _errors(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"batch_id": [None] * n, "row": [None] * n, "reason": ["x"] * n, "column": ["Stad"] * n}
    )


def _statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_health_is_ok_within_thresholds():
    quotes = _rated_quotes(40)
    report = monitoring.health(
        quotes,
        _errors(1),
        profile=profile_inputs(quotes),
        holdout_mape=0.045,
        settings=Settings(),
        model_version="v1",
    )
    assert report.ok and report.alerts == []
    assert report.mape == pytest.approx(0.05) and report.coverage == 1.0
    assert report.error_rate == pytest.approx(1 / 41)
    assert set(_statuses(report).values()) == {"ok"}
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_health_alerts_on_each_threshold():
    # Every 5th actual lies 1 % above the upper bound (1.15 p): coverage 32/40 = 0.8 < 0.85;
    # its APE is 1 - 1/(1.15 * 1.01), so MAPE = (32 * 0.05 + 8 * that) / 40 > 1.25 x 0.03.
    quotes = _rated_quotes(40, miss_every=5)
    report = monitoring.health(
        quotes,
        _errors(3),
        profile=PROFILE,
        holdout_mape=0.03,
        settings=Settings(),
        model_version="v1",
    )
    statuses = _statuses(report)
    assert report.coverage == pytest.approx(0.8)
    assert report.mape == pytest.approx((32 * 0.05 + 8 * (1 - 1 / (1.15 * 1.01))) / 40)
    assert statuses["täckning"] == "larm" and statuses["mape"] == "larm"
    assert statuses["felandel"] == "larm"  # 3 / 43 = 7 % > 5 %
    assert statuses["drift antal_detektorer"] == "larm"  # fake counts reach far past the edges
    assert not report.ok and len(report.alerts) == sum(s == "larm" for s in statuses.values())
    assert any("Täckning" in a or "täckning" in a for a in report.alerts)


def test_health_thresholds_come_from_settings():
    quotes = _rated_quotes(40, miss_every=5)  # coverage 0.8, MAPE 0.068 (see above)
    lenient = Settings(monitor_min_coverage=0.75, monitor_max_mape_ratio=3.0)
    report = monitoring.health(
        quotes, _errors(0), profile=None, holdout_mape=0.03, settings=lenient
    )
    assert _statuses(report)["täckning"] == "ok" and _statuses(report)["mape"] == "ok"


def test_health_with_too_few_actuals_reports_not_enough_data():
    quotes = _rated_quotes(29, miss_every=2, error=0.5)  # awful, but only 29 actuals
    report = monitoring.health(
        quotes, _errors(0), profile=None, holdout_mape=0.05, settings=Settings()
    )
    statuses = _statuses(report)
    assert statuses["täckning"] == statuses["mape"] == "för lite data"
    assert statuses["drift"] == "saknas"  # no training profile: reported, not an alert
    assert report.ok


def test_health_judges_only_the_given_model():
    old = _rated_quotes(40, error=0.6).assign(model_version="v0")
    report = monitoring.health(
        pd.concat([old, _rated_quotes(40)]),
        _errors(0),
        profile=None,
        holdout_mape=0.05,
        settings=Settings(),
        model_version="v1",
    )
    assert report.n_quotes == 40 and report.mape == pytest.approx(0.05) and report.ok


def test_read_active_model(tmp_path):
    (tmp_path / "v0003").mkdir()
    (tmp_path / "ACTIVE").write_text("v0003\n")
    (tmp_path / "v0003" / "metadata.json").write_text(
        json.dumps({"holdout": {"mape": 0.08}, "training_profile": PROFILE})
    )
    model = monitoring.read_active_model(tmp_path)
    assert (model.version, model.holdout_mape, model.training_profile) == ("v0003", 0.08, PROFILE)
    with pytest.raises(monitoring.ActiveModelError, match="kan inte läsas"):
        monitoring.read_active_model(tmp_path / "saknas")


def test_seeded_created_at_is_utc(seeded):
    assert seeded["created_at"].iloc[0] == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_few_quotes_from_an_unchanged_population_raise_no_drift_alarm():
    from avarn_core.synthetic import generate_inputs

    profile = monitoring.profile_inputs(generate_inputs(5000, seed=1))
    recent = generate_inputs(64, seed=2)  # same population, 16 cities, few quotes
    frame = monitoring.drift(profile, recent)
    city = frame.set_index("input").loc["stad"]
    assert city["psi"] > 0.1  # raw PSI looks like drift at this volume …
    assert city["status"] == "ok"  # … but it is what sampling gives
    moved = recent.assign(stad="Ankeborg")
    assert monitoring.drift(profile, moved).set_index("input").loc["stad", "status"] == "larm"
