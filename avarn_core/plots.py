"""Charts for the app: pure functions from a tidy DataFrame to an Altair chart.

Nothing here reads a file, the log or Streamlit state, so every chart can be tested (and
rendered) on its own. Inputs are the frames that `avarn_core.explain` and
`avarn_core.monitoring` return; labels are Swedish, amounts read like "45 230 kr".
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from avarn_core.explain import format_sek
from avarn_core.schema import LABELS

# Vega expressions that write numbers the Swedish way: 45 230 kr, 12,5 %.
SEK_LABEL = "replace(format(datum.value, ',.0f'), regexp(',', 'g'), ' ') + ' kr'"
PERCENT_LABEL = "replace(replace(format(datum.value, '.0%'), '.', ','), '%', ' %')"

RAISES, LOWERS, TOTAL = "Höjer priset", "Sänker priset", "Summa"
STEP_COLORS = alt.Scale(domain=[TOTAL, RAISES, LOWERS], range=["#1f3a5f", "#c8102e", "#2e8540"])
STATUS_COLORS = alt.Scale(domain=["ok", "varning", "larm"], range=["#2e8540", "#e0a100", "#c8102e"])
SOURCE_NAMES = {
    "app-single": "Appen: offert",
    "app-batch": "Appen: fil",
    "cli": "Kommandorad",
    "api": "API",
}
METRIC_NAMES = {"mape": "Medelfel (MAPE)", "coverage": "Täckning (intervallet höll)"}


def _percent(value: float) -> str:
    return "–" if pd.isna(value) else f"{value * 100:.1f} %".replace(".", ",")


def waterfall_chart(steps: pd.DataFrame) -> alt.LayerChart:
    """Waterfall from the base price to the quoted price (`waterfall_frame`'s columns:
    step, label, amount, start, end). The first and last bars stand on zero."""
    data = steps.reset_index(drop=True).copy()
    last = len(data) - 1
    data["order"] = range(len(data))
    data["kind"] = [
        TOTAL if i in (0, last) else RAISES if amount >= 0 else LOWERS
        for i, amount in enumerate(data["amount"])
    ]
    data["amount_text"] = [
        format_sek(a) if i in (0, last) else format_sek(a, sign=True)
        for i, a in enumerate(data["amount"])
    ]
    data["level_text"] = data["end"].map(format_sek)
    data["top"] = data[["start", "end"]].max(axis=1)
    x = alt.X(
        "step:N",
        sort=list(data["step"]),
        title=None,
        axis=alt.Axis(labelAngle=-30, labelOverlap=False, labelLimit=220),
    )
    bars = (
        alt.Chart(data)
        .mark_bar(size=38)
        .encode(
            x=x,
            y=alt.Y("start:Q", title="Pris per år", axis=alt.Axis(labelExpr=SEK_LABEL)),
            y2="end:Q",
            color=alt.Color("kind:N", scale=STEP_COLORS, title=None),
            tooltip=[
                alt.Tooltip("label:N", title="Steg"),
                alt.Tooltip("amount_text:N", title="Belopp"),
                alt.Tooltip("level_text:N", title="Pris efter steget"),
            ],
        )
    )
    text = (
        alt.Chart(data).mark_text(dy=-8, fontSize=12).encode(x=x, y="top:Q", text="amount_text:N")
    )
    return alt.layer(bars, text).properties(height=380)


def importance_chart(importance: pd.DataFrame) -> alt.Chart:
    """What drives prices in general: mean absolute kronor per input (`input`, `mean_abs_sek`)."""
    data = importance.copy()
    data["amount_text"] = data["mean_abs_sek"].map(format_sek)
    return (
        alt.Chart(data)
        .mark_bar(color="#1f3a5f")
        .encode(
            y=alt.Y("input:N", sort="-x", title=None),
            x=alt.X(
                "mean_abs_sek:Q",
                title="Genomsnittlig påverkan på priset",
                axis=alt.Axis(labelExpr=SEK_LABEL),
            ),
            tooltip=[
                alt.Tooltip("input:N", title="Uppgift"),
                alt.Tooltip("amount_text:N", title="Påverkan i snitt"),
            ],
        )
        .properties(height=260)
    )


def volume_chart(volume: pd.DataFrame) -> alt.Chart:
    """Quotes per period, stacked by source (`monitoring.volume`: period, source, n). Periods
    are ordinal bars labelled with their first day, so one day of data is one bar."""
    data = volume.copy()
    data["day"] = pd.to_datetime(data["period"]).dt.strftime("%Y-%m-%d")
    data["source_text"] = data["source"].map(lambda s: SOURCE_NAMES.get(s, s))
    return (
        alt.Chart(data)
        .mark_bar(size=24)
        .encode(
            x=alt.X("day:O", title="Period från", sort="ascending", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("n:Q", title="Antal offerter", stack=True),
            color=alt.Color("source_text:N", title="Källa"),
            tooltip=[
                alt.Tooltip("day:O", title="Period från"),
                alt.Tooltip("source_text:N", title="Källa"),
                alt.Tooltip("n:Q", title="Antal"),
            ],
        )
        .properties(height=260)
    )


def _long_metrics(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    data = frame.melt(
        id_vars=[by, "n"], value_vars=list(METRIC_NAMES), var_name="metric", value_name="value"
    )
    data["measure"] = data["metric"].map(METRIC_NAMES)
    data["value_text"] = data["value"].map(_percent)
    return data.dropna(subset=["value"])


def accuracy_over_time_chart(by_week: pd.DataFrame, level: float | None = None) -> alt.LayerChart:
    """MAPE and interval coverage per week (`monitoring.accuracy(by="week")`), with the
    interval's promised level as a dashed line when given."""
    data = _long_metrics(by_week, "week")
    data["week_text"] = pd.to_datetime(data["week"]).dt.strftime("%Y-%m-%d")
    lines = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "week_text:O",
                title="Vecka från",
                sort="ascending",
                axis=alt.Axis(labelAngle=-30),
            ),
            y=alt.Y("value:Q", title=None, axis=alt.Axis(labelExpr=PERCENT_LABEL)),
            color=alt.Color("measure:N", title=None),
            tooltip=[
                alt.Tooltip("week_text:O", title="Vecka från"),
                alt.Tooltip("measure:N", title="Mått"),
                alt.Tooltip("value_text:N", title="Värde"),
                alt.Tooltip("n:Q", title="Offerter med faktiskt pris"),
            ],
        )
    )
    layers: list[alt.Chart] = [lines]
    if level is not None:
        target = pd.DataFrame({"value": [level], "label": [f"Mål {_percent(level)}"]})
        layers.append(
            alt.Chart(target)
            .mark_rule(strokeDash=[6, 4], color="#666")
            .encode(y="value:Q", tooltip=alt.Tooltip("label:N", title="Täckning"))
        )
    return alt.layer(*layers).properties(height=280)


def accuracy_by_group_chart(frame: pd.DataFrame, by: str) -> alt.Chart:
    """MAPE and coverage side by side per value of `by` (e.g. model_version)."""
    data = _long_metrics(frame, by)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{by}:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset="measure:N",
            y=alt.Y("value:Q", title=None, axis=alt.Axis(labelExpr=PERCENT_LABEL)),
            color=alt.Color("measure:N", title=None),
            tooltip=[
                alt.Tooltip(f"{by}:N", title="Grupp"),
                alt.Tooltip("measure:N", title="Mått"),
                alt.Tooltip("value_text:N", title="Värde"),
                alt.Tooltip("n:Q", title="Offerter med faktiskt pris"),
            ],
        )
        .properties(height=260)
    )


def residuals_chart(frame: pd.DataFrame, by: str, title: str) -> alt.Chart:
    """Mean relative error (bias: positive when quotes were too high) per value of `by`,
    from `monitoring.accuracy(by=...)` (columns by, n, mape, bias, coverage, ...)."""
    data = frame.dropna(subset=["bias"]).copy()
    data["direction"] = ["För högt" if b > 0 else "För lågt" for b in data["bias"]]
    for column in ("bias", "mape", "coverage"):
        data[f"{column}_text"] = data[column].map(_percent)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y(f"{by}:N", title=title, sort="-x"),
            x=alt.X(
                "bias:Q",
                title="Medelavvikelse (offert mot faktiskt pris)",
                axis=alt.Axis(labelExpr=PERCENT_LABEL),
            ),
            color=alt.Color(
                "direction:N",
                title=None,
                scale=alt.Scale(domain=["För högt", "För lågt"], range=["#c8102e", "#1f3a5f"]),
            ),
            tooltip=[
                alt.Tooltip(f"{by}:N", title=title),
                alt.Tooltip("bias_text:N", title="Medelavvikelse"),
                alt.Tooltip("mape_text:N", title="Medelfel (MAPE)"),
                alt.Tooltip("coverage_text:N", title="Täckning"),
                alt.Tooltip("n:Q", title="Offerter med faktiskt pris"),
            ],
        )
        .properties(height=alt.Step(22))
    )


def scatter_chart(pairs: pd.DataFrame) -> alt.LayerChart:
    """Quoted against actual price (`monitoring.pairs`), coloured by whether the interval held
    the actual price, with the line where they are equal."""
    data = pairs.copy()
    data["inside_text"] = data["inside"].map(
        {True: "Inom intervallet", False: "Utanför intervallet"}
    )
    data["predicted_text"] = data["predicted_price"].map(format_sek)
    data["actual_text"] = data["faktiskt_pris"].map(format_sek)
    sek_axis = alt.Axis(labelExpr=SEK_LABEL)
    points = (
        alt.Chart(data)
        .mark_circle(size=40, opacity=0.6)
        .encode(
            x=alt.X("faktiskt_pris:Q", title="Faktiskt pris", axis=sek_axis),
            y=alt.Y("predicted_price:Q", title="Offererat pris", axis=sek_axis),
            color=alt.Color(
                "inside_text:N",
                title=None,
                scale=alt.Scale(
                    domain=["Inom intervallet", "Utanför intervallet"],
                    range=["#1f3a5f", "#c8102e"],
                ),
            ),
            tooltip=[
                alt.Tooltip("stad:N", title="Stad"),
                alt.Tooltip("predicted_text:N", title="Offererat"),
                alt.Tooltip("actual_text:N", title="Faktiskt"),
                alt.Tooltip("prediction_id:N", title="Prediktions-id"),
            ],
        )
    )
    low = float(min(data["faktiskt_pris"].min(), data["predicted_price"].min()))
    high = float(max(data["faktiskt_pris"].max(), data["predicted_price"].max()))
    diagonal = (
        alt.Chart(pd.DataFrame({"x": [low, high], "y": [low, high]}))
        .mark_line(strokeDash=[6, 4], color="#666")
        .encode(x="x:Q", y="y:Q")
    )
    return alt.layer(diagonal, points).properties(height=380)


def drift_chart(drift: pd.DataFrame, warning: float = 0.1, alert: float = 0.25) -> alt.LayerChart:
    """Drift per input (`monitoring.drift`): the PSI beyond what sampling alone gives
    (`beyond_sampling`, the figure the status and the alerts judge), coloured by status, with
    the warning and alert levels as lines. The raw PSI and the sampling part are in the
    tooltip."""
    data = drift.dropna(subset=["psi"]).copy()
    data["input"] = data["input"].map(lambda name: LABELS.get(name, name))

    def text(value: float) -> str:
        return f"{value:.3f}".replace(".", ",")

    data["beyond_text"] = data["beyond_sampling"].map(text)
    data["psi_text"] = data["psi"].map(text)
    data["sampling_text"] = data["sampling_psi"].map(lambda v: "~" + text(v))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("input:N", title=None, sort="-x"),
            x=alt.X("beyond_sampling:Q", title="Förändring mot träningsdata utöver slumpen (PSI)"),
            color=alt.Color("status:N", scale=STATUS_COLORS, title="Status"),
            tooltip=[
                alt.Tooltip("input:N", title="Uppgift"),
                alt.Tooltip("beyond_text:N", title="PSI utöver slumpen"),
                alt.Tooltip("psi_text:N", title="PSI"),
                alt.Tooltip("sampling_text:N", title="Varav slumpen"),
                alt.Tooltip("status:N", title="Status"),
            ],
        )
    )
    levels = pd.DataFrame(
        {
            "beyond_sampling": [warning, alert],
            "label": ["Varning", "Larm"],
            "level_text": [text(warning), text(alert)],
        }
    )
    rules = (
        alt.Chart(levels)
        .mark_rule(strokeDash=[6, 4])
        .encode(
            x="beyond_sampling:Q",
            color=alt.value("#666"),
            tooltip=[
                alt.Tooltip("label:N", title="Nivå"),
                alt.Tooltip("level_text:N", title="PSI utöver slumpen"),
            ],
        )
    )
    return alt.layer(bars, rules).properties(height=alt.Step(26))
