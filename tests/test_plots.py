"""Charts are pure functions of tidy frames: valid Vega-Lite, the right data and encodings."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import pytest

from avarn_core import monitoring, plots, waterfall_frame


def spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite spec (Altair validates it against the schema on the way)."""
    return chart.to_dict()


def layer_rows(chart: alt.TopLevelMixin) -> list[list[dict]]:
    """Each layer's data rows, resolving the named datasets Altair consolidates."""
    d = spec(chart)
    datasets = d.get("datasets", {})
    layers = d.get("layer", [d])
    rows = []
    for layer in layers:
        data = layer.get("data", d.get("data"))
        rows.append(datasets[data["name"]] if "name" in data else data["values"])
    return rows


@pytest.fixture()
def steps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": ["Typiskt avtal", "Testintervall", "Stad", "Pris"],
            "label": ["Typiskt avtal", "Testintervall: x", "Stad: läget i Lund", "Pris"],
            "amount": [20_000, 3_000, -500, 22_500],
            "start": [0, 20_000, 23_000, 0],
            "end": [20_000, 23_000, 22_500, 22_500],
        }
    )


def test_waterfall_bars_run_from_start_to_end_in_order(steps):
    chart = plots.waterfall_chart(steps)
    bars, text = spec(chart)["layer"]
    assert bars["mark"]["type"] == "bar" and text["mark"]["type"] == "text"
    assert bars["encoding"]["y"]["field"] == "start" and bars["encoding"]["y2"]["field"] == "end"
    assert bars["encoding"]["x"]["sort"] == list(steps["step"])
    rows = layer_rows(chart)[0]
    assert [(r["start"], r["end"]) for r in rows] == list(
        zip(steps["start"], steps["end"], strict=True)
    )
    assert [r["kind"] for r in rows] == ["Summa", "Höjer priset", "Sänker priset", "Summa"]
    assert [r["amount_text"] for r in rows] == [
        "20\u00a0000\u00a0kr",
        "+3\u00a0000\u00a0kr",
        "\u2212500\u00a0kr",
        "22\u00a0500\u00a0kr",
    ]


def test_waterfall_of_a_real_explanation_ends_at_the_price(predictor, request_example):
    explanation = predictor.explain(request_example)
    frame = waterfall_frame(explanation)
    rows = layer_rows(plots.waterfall_chart(frame))[0]
    quote = predictor.quote(request_example)
    assert rows[-1]["end"] == quote.predicted_price
    assert rows[-2]["end"] == quote.predicted_price  # the last step lands on the price
    assert all(r["kind"] != "Summa" for r in rows[1:-1])


def test_importance_sorted_bars_with_kronor_tooltips():
    frame = pd.DataFrame({"input": ["Stad", "Testintervall"], "mean_abs_sek": [1200.4, 8000.0]})
    d = spec(plots.importance_chart(frame))
    assert d["encoding"]["y"]["sort"] == "-x"
    rows = layer_rows(plots.importance_chart(frame))[0]
    assert [r["amount_text"] for r in rows] == ["1\u00a0200\u00a0kr", "8\u00a0000\u00a0kr"]


def test_volume_is_stacked_by_source():
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2025-01-06", "2025-01-06", "2025-01-13"]),
            "source": ["app-single", "app-batch", "app-single"],
            "n": [3, 100, 4],
        }
    )
    chart = plots.volume_chart(frame)
    d = spec(chart)
    assert d["mark"]["type"] == "bar"
    assert d["encoding"]["color"]["field"] == "source_text"
    assert d["encoding"]["y"]["field"] == "n" and d["encoding"]["y"]["stack"] is True
    rows = layer_rows(chart)[0]
    assert [(r["day"], r["source_text"], r["n"]) for r in rows] == [
        ("2025-01-06", "Appen: offert", 3),
        ("2025-01-06", "Appen: fil", 100),
        ("2025-01-13", "Appen: offert", 4),
    ]


def test_accuracy_over_time_has_both_measures_and_the_target_line():
    weeks = pd.DataFrame(
        {
            "week": pd.to_datetime(["2025-01-06", "2025-01-13"]),
            "n": [40, 35],
            "mape": [0.08, 0.11],
            "coverage": [0.9, math.nan],
        }
    )
    chart = plots.accuracy_over_time_chart(weeks, level=0.9)
    lines, target = layer_rows(chart)
    assert {r["measure"] for r in lines} == {"Medelfel (MAPE)", "Täckning (intervallet höll)"}
    assert len(lines) == 3  # the missing coverage is left out, not drawn as zero
    assert sorted({r["week_text"] for r in lines}) == ["2025-01-06", "2025-01-13"]
    assert target == [{"value": 0.9, "label": "Mål 90,0 %"}]
    assert len(spec(plots.accuracy_over_time_chart(weeks))["layer"]) == 1


def test_accuracy_by_group_offsets_the_two_measures():
    frame = pd.DataFrame(
        {
            "model_version": ["v0001", "v0002"],
            "n": [50, 60],
            "mape": [0.1, 0.08],
            "coverage": [0.88, 0.91],
        }
    )
    d = spec(plots.accuracy_by_group_chart(frame, "model_version"))
    assert d["encoding"]["x"]["field"] == "model_version"
    assert d["encoding"]["xOffset"]["field"] == "measure"


def test_residuals_say_which_way_the_quotes_missed():
    frame = pd.DataFrame(
        {
            "stad": ["Lund", "Umeå", "Ny"],
            "n": [30, 31, 0],
            "mape": [0.1, 0.2, math.nan],
            "bias": [0.05, -0.12, math.nan],
            "coverage": [0.9, 0.8, math.nan],
        }
    )
    chart = plots.residuals_chart(frame, "stad", "Stad")
    rows = layer_rows(chart)[0]
    assert [(r["stad"], r["direction"], r["bias_text"]) for r in rows] == [
        ("Lund", "För högt", "5,0 %"),
        ("Umeå", "För lågt", "-12,0 %"),
    ]
    assert spec(chart)["encoding"]["x"]["field"] == "bias"


def test_scatter_has_the_diagonal_over_the_whole_range():
    pairs = pd.DataFrame(
        {
            "prediction_id": ["a", "b"],
            "stad": ["Lund", "Umeå"],
            "predicted_price": [10_000.0, 30_000.0],
            "faktiskt_pris": [12_000.0, 25_000.0],
            "inside": [True, False],
        }
    )
    diagonal, points = layer_rows(plots.scatter_chart(pairs))
    assert [(r["x"], r["y"]) for r in diagonal] == [(10_000.0, 10_000.0), (30_000.0, 30_000.0)]
    assert [r["inside_text"] for r in points] == ["Inom intervallet", "Utanför intervallet"]


def test_drift_bars_coloured_by_status_with_warning_and_alert_lines():
    drift = pd.DataFrame(
        {
            "input": ["antal_sektioner", "stad", "ventilation"],
            "psi": [0.02, 0.31, math.nan],
            "status": ["ok", "larm", "ingen data"],
            "n": [50, 50, 0],
            "unseen_share": [math.nan, 0.2, math.nan],
            "sampling_psi": [0.01, 0.04, math.nan],
            "beyond_sampling": [0.01, 0.27, math.nan],
        }
    )
    chart = plots.drift_chart(drift)
    bars, rules = layer_rows(chart)
    assert [r["input"] for r in bars] == ["Antal sektioner", "Stad"]
    assert [r["beyond_sampling"] for r in rules] == [0.1, 0.25]
    assert spec(chart)["layer"][0]["encoding"]["color"]["scale"]["domain"] == [
        "ok",
        "varning",
        "larm",
    ]


def test_drift_chart_draws_what_the_status_judges(training_quotes):
    """Few quotes from an unchanged population: the raw PSI of the city passes the alert line
    by sampling alone. The bar must show the PSI beyond sampling, which the status ("ok")
    judges, so that the chart and the status agree."""
    from avarn_core.synthetic import generate_inputs

    drift = monitoring.drift(
        monitoring.profile_inputs(generate_inputs(5000, seed=1)), generate_inputs(64, seed=2)
    )
    city = drift.set_index("input").loc["stad"]
    assert city["psi"] > 0.1 and city["status"] == "ok"
    chart = plots.drift_chart(drift)
    bars, rules = layer_rows(chart)
    x = spec(chart)["layer"][0]["encoding"]["x"]["field"]
    shown = {r["input"]: r[x] for r in bars}
    assert shown["Stad"] == pytest.approx(max(city["psi"] - city["sampling_psi"], 0.0))
    assert shown["Stad"] < 0.1  # below the warning line, as its status says
    assert [r[spec(chart)["layer"][1]["encoding"]["x"]["field"]] for r in rules] == [0.1, 0.25]
    assert "utöver slumpen" in spec(chart)["layer"][0]["encoding"]["x"]["title"]


def test_axis_labels_are_written_the_swedish_way():
    # The expressions Vega evaluates: thousands with spaces and " kr"; percent with a comma.
    assert "regexp(',', 'g'), ' '" in plots.SEK_LABEL and plots.SEK_LABEL.endswith("' kr'")
    assert "'%', ' %'" in plots.PERCENT_LABEL and "'.', ','" in plots.PERCENT_LABEL
