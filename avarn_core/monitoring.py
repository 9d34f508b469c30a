"""How right the model has been in production: pure functions over frames from the log.

Nothing here touches the database: pass `PredictionLog.quotes()` and `PredictionLog.errors()`
(or any frames with the same columns). Results are tidy frames, ready for charts.

Definitions, for quotes that have an actual price `a` and prediction `p` in `[lo, hi]`:

- APE = |p - a| / a; MAPE is its mean and `median_ape` its median (fractions: 0.12 = 12 %);
- bias = mean((p - a) / a): positive when quotes are too high;
- coverage = share of quotes with lo <= a <= hi;
- relative width = (hi - lo) / p, the interval's width as a share of the quoted price.

Drift is measured with the population stability index, PSI = sum((r - t) * ln(r / t)) over
bins, where t is the training share of a bin and r the recent share. Counts are binned on the
training deciles stored by `profile_inputs`; ventilation, testing interval and city are
categories. A share of 0 on either side is replaced by PSI_EPSILON (1e-4, i.e. 0.01 %) so
the logarithm stays finite. A small sample differs from its population by chance alone, so
what is judged is the PSI beyond sampling (`beyond_sampling` = psi − sampling_psi, at least 0;
see `sampling_psi`): "ok" below 0.1, "varning" from 0.1, "larm" from 0.25 (the alert level is
`Settings.monitor_psi_alert`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avarn_core.schema import COUNT_COLUMNS, INTERVAL_COLUMNS, LABELS, fold
from avarn_core.settings import Settings

PSI_EPSILON = 1e-4
PSI_WARNING = 0.1
PSI_ALERT = 0.25
MIN_ACTUALS = 30  # fewer actual prices than this: coverage and MAPE are not judged
MIN_RECENT_QUOTES = 30  # fewer recent quotes than this: drift is not judged
DRIFT_COLUMNS = ["input", "psi", "status", "n", "unseen_share", "sampling_psi", "beyond_sampling"]
ACCURACY_GROUPS = ("week", "model_version", "stad", "interval")
_DECILES = np.linspace(0.1, 0.9, 9)

# -- volume, accuracy, errors -----------------------------------------------------------------


def volume(quotes: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Quotes per period (start of the UTC period; "W" weeks start on Monday) and source.

    Columns: period, source, n.
    """
    period = _period_start(quotes["created_at"], freq)
    counts = quotes.groupby([period.rename("period"), quotes["source"]]).size()
    return counts.rename("n").reset_index()


def pairs(quotes: pd.DataFrame) -> pd.DataFrame:
    """Predicted versus actual price for every quote with an actual, with its APE and whether
    the interval held the actual (`inside`)."""
    rated = _rated(quotes)
    columns = [
        "prediction_id",
        "created_at",
        "model_version",
        "stad",
        "predicted_price",
        "confidence_interval_lower",
        "confidence_interval_upper",
        "faktiskt_pris",
        "ape",
        "inside",
    ]
    return rated[columns].reset_index(drop=True)


def accuracy(quotes: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """n, mape, median_ape, bias, coverage and mean_relative_width of quotes with actuals.

    `by` is None (one row, n = 0 and NaN figures when there are no actuals), "week" (of the
    quote), "model_version", "stad" or "interval" (årsvis, kvartalsvis, månadsvis).
    """
    rated = _rated(quotes)
    if by is None:
        return pd.DataFrame([_summary(rated)])
    if by not in ACCURACY_GROUPS:
        raise ValueError(f"by must be None or one of {ACCURACY_GROUPS}, not {by!r}")
    keys = {
        "week": lambda f: _period_start(f["created_at"], "W"),
        "model_version": lambda f: f["model_version"],
        "stad": lambda f: f["stad"],
        "interval": _interval,
    }
    key = keys[by](rated)
    rows = [{by: value, **_summary(group)} for value, group in rated.groupby(key, sort=True)]
    return pd.DataFrame(rows, columns=[by, *_summary(rated.iloc[:0])])


def error_rate(
    quotes: pd.DataFrame, errors: pd.DataFrame, by: str | None = "reason"
) -> pd.DataFrame:
    """Share of pricing attempts that failed, overall (`by=None`) or per value of an error
    column ("reason", "column", "source").

    An attempt is a quote or a failed row. Several errors on one spreadsheet row (same
    batch_id and row) count as one failed row; an error without batch and row counts as one
    failed request. Columns: [by], n (failed rows), attempts, rate (n / attempts).
    """
    units = _failure_units(errors)
    attempts = len(quotes) + units.nunique()
    rate = (lambda n: n / attempts) if attempts else (lambda n: math.nan)
    if by is None:
        n = units.nunique()
        return pd.DataFrame([{"n": n, "attempts": attempts, "rate": rate(n)}])
    counts = units.groupby(errors[by].to_numpy()).nunique().sort_values(ascending=False)
    frame = pd.DataFrame({by: counts.index, "n": counts.to_numpy(), "attempts": attempts})
    frame["rate"] = frame["n"].map(rate)
    return frame


# -- drift --------------------------------------------------------------------------------------


def profile_inputs(inputs: pd.DataFrame) -> dict[str, Any]:
    """A JSON-serialisable profile of training inputs, the reference for `drift`.

    Per count column, `edges` are the distinct training deciles; they cut the line into
    len(edges) + 1 right-closed bins (-inf, e0], (e0, e1], ..., (e_last, inf) and `shares`
    are the training share in each. Categories map to their training share.

    >>> p = profile_inputs(pd.DataFrame({"antal_sektioner": [1, 2, 3, 4], "antal_detektorer":
    ...     [0] * 4, "antal_larmdon": [0] * 4, "dörrhållarmagneter": [0] * 4, "ventilation":
    ...     [0, 1, 1, 1], "stad": ["Lund"] * 4, "årsvis": [1] * 4, "kvartalsvis": [0] * 4,
    ...     "månadsvis": [0] * 4}))
    >>> p["ventilation"], p["counts"]["antal_detektorer"]
    ({'0': 0.25, '1': 0.75}, {'edges': [0.0], 'shares': [1.0, 0.0]})
    """
    counts = {}
    for column in COUNT_COLUMNS:
        values = inputs[column].to_numpy(dtype=float)
        edges = [float(e) for e in np.unique(np.quantile(values, _DECILES))]
        counts[column] = {"edges": edges, "shares": _bin_shares(values, edges).tolist()}
    return {
        "version": 1,
        "n": int(len(inputs)),
        "counts": counts,
        "ventilation": _shares(inputs["ventilation"].astype(int).astype(str), ["0", "1"]),
        "testintervall": _shares(_interval(inputs), INTERVAL_COLUMNS),
        "stad": _shares(inputs["stad"].astype(str), []),
    }


def drift(
    profile: dict[str, Any], recent_inputs: pd.DataFrame, *, alert: float = PSI_ALERT
) -> pd.DataFrame:
    """PSI of each input between the training profile and recent inputs.

    Columns: input, psi, status ("ok", "varning", "larm"; "ingen data" without recent
    inputs), n (recent rows) and unseen_share (for `stad`: the share of recent quotes in a
    city the training data did not have; such cities form one extra bin with training share 0),
    sampling_psi (what sampling alone gives at this n) and beyond_sampling (psi − sampling_psi,
    at least 0), which the status judges: "varning" from PSI_WARNING, "larm" from `alert`.
    """
    n = len(recent_inputs)
    rows = []
    for column in COUNT_COLUMNS:
        spec = profile["counts"][column]
        values = recent_inputs[column].to_numpy(dtype=float)
        recent = _bin_shares(values, spec["edges"])
        rows.append(_drift_row(column, np.asarray(spec["shares"]), recent, n, alert))
    categories = {
        "ventilation": recent_inputs["ventilation"].astype(int).astype(str),
        "testintervall": _interval(recent_inputs),
        "stad": recent_inputs["stad"].astype(str),
    }
    for name, values in categories.items():
        trained = pd.Series(profile[name], dtype=float)
        if name == "stad":  # "goteborg" is Göteborg
            values = values.map(fold)
            trained = trained.groupby(trained.index.map(fold)).sum()
        recent_counts = values.value_counts()
        recent = recent_counts.reindex(trained.index, fill_value=0).to_numpy() / max(n, 1)
        unseen = 1.0 - recent.sum() if n else math.nan
        expected = np.append(trained.to_numpy(), 0.0)
        row = _drift_row(name, expected, np.append(recent, unseen if n else 0.0), n, alert)
        row["unseen_share"] = unseen if name == "stad" else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def psi(expected: np.ndarray, recent: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins.

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    """
    e = np.where(expected > 0, expected, PSI_EPSILON)
    r = np.where(recent > 0, recent, PSI_EPSILON)
    return float(np.sum((r - e) * np.log(r / e)))


def psi_status(value: float, alert: float = PSI_ALERT) -> str:
    if math.isnan(value):
        return "ingen data"
    return "ok" if value < PSI_WARNING else "varning" if value < alert else "larm"


# -- health -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One threshold check. status: "ok", "larm", "för lite data" or "saknas"."""

    name: str
    status: str
    value: float | None
    limit: float | None
    message: str


@dataclass
class Health:
    """The figures `avarn monitor` reports and the checks made on them."""

    model_version: str | None
    n_quotes: int
    n_actuals: int
    n_errors: int
    mape: float | None
    holdout_mape: float | None
    coverage: float | None
    error_rate: float | None
    drift: pd.DataFrame
    checks: list[Check] = field(default_factory=list)

    @property
    def alerts(self) -> list[str]:
        return [c.message for c in self.checks if c.status == "larm"]

    @property
    def ok(self) -> bool:
        return not self.alerts

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (NaN becomes None)."""
        figures = {k: v for k, v in asdict(self).items() if k not in ("drift", "checks")}
        data = {
            **figures,
            "ok": self.ok,
            "alerts": self.alerts,
            "checks": [asdict(c) for c in self.checks],
            "drift": self.drift.to_dict("records"),
        }
        return _jsonable(data)

    def text(self) -> str:
        """A Swedish report for a terminal or a cron mail."""
        head = (
            f"Modell {self.model_version or '(okänd)'}: {self.n_quotes} offerter, "
            f"{self.n_actuals} med faktiskt pris, {self.n_errors} fel"
        )
        lines = [head] + [f"[{c.status.upper()}] {c.message}" for c in self.checks]
        lines.append("Inga larm." if self.ok else f"{len(self.alerts)} larm.")
        return "\n".join(lines)


def health(
    quotes: pd.DataFrame,
    errors: pd.DataFrame,
    *,
    profile: dict[str, Any] | None,
    holdout_mape: float | None,
    settings: Settings,
    model_version: str | None = None,
) -> Health:
    """Check the log against the alert thresholds in `settings`.

    Alerts: coverage below `monitor_min_coverage`; MAPE above `monitor_max_mape_ratio` times
    the holdout MAPE; any input with PSI at or above `monitor_psi_alert`; error rate above
    `monitor_max_error_rate`. With fewer than MIN_ACTUALS actual prices coverage and MAPE are
    reported as "för lite data", not as alerts (likewise drift below MIN_RECENT_QUOTES).
    With `model_version`, accuracy and drift use only that model's quotes; the error rate
    always uses all quotes, since a failed row never reached a model.
    """
    own = quotes if model_version is None else quotes[quotes["model_version"] == model_version]
    summary = accuracy(own).iloc[0]
    n_actuals = int(summary["n"])
    mape, coverage = _number(summary["mape"]), _number(summary["coverage"])
    failures = error_rate(quotes, errors, by=None).iloc[0]
    rate = _number(failures["rate"])
    judged = profile and len(own) >= MIN_RECENT_QUOTES
    drift_frame = drift(profile, own, alert=settings.monitor_psi_alert) if judged else _no_drift()

    checks = _accuracy_checks(n_actuals, coverage, mape, holdout_mape, settings)
    checks += _drift_checks(profile, len(own), drift_frame, settings)
    if rate is None:
        checks.append(Check("felandel", "för lite data", None, None, "Felandel: inga försök"))
    else:
        limit = settings.monitor_max_error_rate
        status = "larm" if rate > limit else "ok"
        message = f"Felandel {_pct(rate)} (gräns {_pct(limit)})"
        checks.append(Check("felandel", status, rate, limit, message))
    return Health(
        model_version=model_version,
        n_quotes=len(own),
        n_actuals=n_actuals,
        n_errors=int(failures["n"]),
        mape=mape,
        holdout_mape=holdout_mape,
        coverage=coverage,
        error_rate=rate,
        drift=drift_frame,
        checks=checks,
    )


# -- the active model's metadata ---------------------------------------------------------------
class ActiveModelError(RuntimeError):
    """The active model or its metadata cannot be read."""


@dataclass(frozen=True)
class ActiveModel:
    version: str
    holdout_mape: float | None
    training_profile: dict[str, Any] | None


def read_active_model(models_dir: Path) -> ActiveModel:
    """What monitoring needs of the active model: its holdout MAPE and training profile."""
    from avarn_core.registry import ModelNotFoundError, active_metadata

    try:
        metadata = active_metadata(Path(models_dir))
    except (ModelNotFoundError, OSError, ValueError) as exc:
        raise ActiveModelError(f"Den aktiva modellen i {models_dir} kan inte läsas: {exc}") from exc
    mape = (metadata.get("holdout") or {}).get("mape")
    return ActiveModel(
        metadata["version"],
        None if mape is None else float(mape),
        metadata.get("training_profile"),
    )


# -- helpers ------------------------------------------------------------------------------------


def _period_start(times: pd.Series, freq: str) -> pd.Series:
    naive = pd.to_datetime(times, utc=True).dt.tz_localize(None)
    return naive.dt.to_period(freq).dt.start_time


def _interval(frame: pd.DataFrame) -> pd.Series:
    """The testing interval as one column: "årsvis", "kvartalsvis" or "månadsvis"."""
    chosen = np.select(
        [frame[c].to_numpy() == 1 for c in INTERVAL_COLUMNS], INTERVAL_COLUMNS, default=""
    )
    return pd.Series(chosen, index=frame.index, dtype=object)


def _rated(quotes: pd.DataFrame) -> pd.DataFrame:
    """Quotes that have an actual price, with ape, rel_error, inside and rel_width."""
    rated = quotes[quotes["faktiskt_pris"].notna()].copy()
    actual, predicted = rated["faktiskt_pris"], rated["predicted_price"]
    lower, upper = rated["confidence_interval_lower"], rated["confidence_interval_upper"]
    rated["rel_error"] = (predicted - actual) / actual
    rated["ape"] = rated["rel_error"].abs()
    rated["inside"] = (lower <= actual) & (actual <= upper)
    rated["rel_width"] = (upper - lower) / predicted
    return rated


def _summary(rated: pd.DataFrame) -> dict[str, float]:
    return {
        "n": len(rated),
        "mape": rated["ape"].mean(),
        "median_ape": rated["ape"].median(),
        "bias": rated["rel_error"].mean(),
        "coverage": rated["inside"].astype(float).mean(),
        "mean_relative_width": rated["rel_width"].mean(),
    }


def _failure_units(errors: pd.DataFrame) -> pd.Series:
    """A key per failed row: batch and row when both are known, else the error itself."""
    if errors.empty:
        return pd.Series([], dtype=object)
    own = pd.Series([f"error:{i}" for i in range(len(errors))], index=errors.index)
    batch, row = errors["batch_id"], errors["row"]
    shared = batch.notna() & row.notna()
    return own.where(~shared, "row:" + batch.astype(str) + ":" + row.astype(str))


def _bin_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def _shares(values: pd.Series, always: list[str]) -> dict[str, float]:
    shares = values.value_counts(normalize=True)
    return {
        str(k): float(shares.get(k, 0.0))
        for k in [*always, *sorted(set(shares.index) - set(always))]
    }


def sampling_psi(bins: int, n: int) -> float:
    """The PSI that sampling alone gives n quotes from an unchanged population, about
    (bins − 1) / n (PSI ≈ χ²/n with bins − 1 degrees of freedom for small shifts). With 16
    cities and 60 quotes that is 0.25 — an "alert" out of nothing — so it is subtracted before
    a PSI is judged."""
    return (bins - 1) / n if n else math.nan


def _drift_row(
    name: str, expected: np.ndarray, recent: np.ndarray, n: int, alert: float
) -> dict[str, Any]:
    value = psi(expected, recent) if n else math.nan
    noise = sampling_psi(int(np.count_nonzero((expected > 0) | (recent > 0))), n)
    beyond = max(value - noise, 0.0) if n else math.nan
    return {
        "input": name,
        "psi": value,
        "status": psi_status(beyond, alert),
        "n": n,
        "unseen_share": math.nan,
        "sampling_psi": noise,
        "beyond_sampling": beyond,
    }


def drift_text(name: str, value: float, noise: float, level: str) -> str:
    """'Drift i antal detektorer: PSI utöver slumpen 0,120 (PSI 0,150, varav slumpen ~0,030;
    gräns 0,25)': the input by its Swedish name, the judged figure first."""
    label = LABELS.get(name, name).lower()
    beyond = max(value - noise, 0.0)
    return (
        f"Drift i {label}: PSI utöver slumpen {beyond:.3f} (PSI {value:.3f}, varav slumpen "
        f"~{noise:.3f}; {level})"
    ).replace(".", ",")


def _no_drift() -> pd.DataFrame:
    return pd.DataFrame(columns=DRIFT_COLUMNS)


def _jsonable(value: Any) -> Any:
    """Plain JSON types: NaN and NaT become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return None if pd.isna(value) else str(value)


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %".replace(".", ",")


def _accuracy_checks(
    n_actuals: int,
    coverage: float | None,
    mape: float | None,
    holdout_mape: float | None,
    settings: Settings,
) -> list[Check]:
    if n_actuals < MIN_ACTUALS:
        why = f"för få faktiska priser ({n_actuals} av minst {MIN_ACTUALS})"
        return [
            Check(
                "täckning",
                "för lite data",
                coverage,
                settings.monitor_min_coverage,
                f"Täckning bedöms inte: {why}",
            ),
            Check("mape", "för lite data", mape, None, f"MAPE bedöms inte: {why}"),
        ]
    limit = settings.monitor_min_coverage
    checks = [
        Check(
            "täckning",
            "larm" if coverage < limit else "ok",
            coverage,
            limit,
            f"Intervallens täckning {_pct(coverage)} (gräns minst {_pct(limit)})",
        )
    ]
    if holdout_mape is None:
        checks.append(
            Check(
                "mape",
                "saknas",
                mape,
                None,
                f"MAPE {_pct(mape)}; modellens holdout-MAPE saknas, ingen jämförelse",
            )
        )
    else:
        limit = settings.monitor_max_mape_ratio * holdout_mape
        checks.append(
            Check(
                "mape",
                "larm" if mape > limit else "ok",
                mape,
                limit,
                f"MAPE {_pct(mape)} (holdout {_pct(holdout_mape)}, gräns högst {_pct(limit)})",
            )
        )
    return checks


def _drift_checks(
    profile: dict[str, Any] | None, n: int, frame: pd.DataFrame, settings: Settings
) -> list[Check]:
    if not profile:
        return [
            Check("drift", "saknas", None, None, "Drift mäts inte: modellen saknar träningsprofil")
        ]
    if n < MIN_RECENT_QUOTES:
        return [
            Check(
                "drift",
                "för lite data",
                None,
                None,
                f"Drift bedöms inte: för få offerter ({n} av minst {MIN_RECENT_QUOTES})",
            )
        ]
    limit = settings.monitor_psi_alert
    checks = []
    for row in frame.itertuples():
        status = "larm" if row.beyond_sampling >= limit else "ok"
        message = drift_text(row.input, row.psi, row.sampling_psi, f"gräns {limit:.2f}")
        if row.input == "stad":
            message += f", okända städer {_pct(row.unseen_share)}"
        checks.append(Check(f"drift {row.input}", status, row.psi, limit, message))
    return checks
