"""Training: model choice by cross-validated MAPE, conformal calibration, holdout measurement.

1. A seeded 20 % holdout is set aside before anything is chosen.
2. On the other 80 %, every candidate (GAM settings, tree settings) is scored by 5-fold
   out-of-fold MAPE; the best GAM and the best trees are blended with the weight (0, 0.1, … 1)
   that gives the lowest out-of-fold MAPE. Candidates are generic: nothing here knows how the
   demo data was made.
3. The chosen model is fitted on the 80 %, calibrated on its out-of-fold residuals (split
   conformal per testing interval, see `Calibration`) and measured
   on the holdout: MAPE, interval coverage and width, overall and per testing interval.
4. The shipped model is refitted on all rows and calibrated on every out-of-sample residual seen
   (out-of-fold and holdout); the holdout figures therefore describe a model trained on 80 % of
   the data, a slightly pessimistic view of the shipped one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avarn_core.features import EXPLAINED_INPUTS, Features, encode
from avarn_core.io import read_table
from avarn_core.model.price_model import ModelSpec, PriceModel, mape_scale
from avarn_core.monitoring import profile_inputs
from avarn_core.registry import active_metadata, active_version, save_version
from avarn_core.schema import (
    INTERVAL_COLUMNS,
    TARGET,
    RowError,
    parse_training_prices,
    validate_table,
)
from avarn_core.settings import get_settings

GAM_CANDIDATES: list[dict[str, Any]] = [{"n_knots": 3}, {"n_knots": 5}]
# Tree candidates stay small enough that exact TreeSHAP explains 100,000 rows well inside a
# minute (its cost grows with trees × leaves × depth²): a model whose price cannot be explained
# in time is not a candidate, however accurate.
TREE_CANDIDATES: list[dict[str, Any]] = [
    {"num_rounds": 300, "num_leaves": 8, "learning_rate": 0.1},
    {"num_rounds": 200, "num_leaves": 16, "max_depth": 5, "learning_rate": 0.1},
    {"num_rounds": 600, "num_leaves": 4, "learning_rate": 0.1},
]
REJECTED_KEPT = 200  # rejected training rows listed in the metadata
BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)
MIN_ROWS = 100

Progress = Callable[[str, float], None]


@dataclass
class TrainingResult:
    model: PriceModel
    report: dict[str, Any] = field(default_factory=dict)


def _no_progress(message: str, fraction: float) -> None:
    return None


def scaled_mape(log_actual: np.ndarray, log_pred: np.ndarray) -> float:
    """MAPE after the MAPE-optimal scale, as the model will quote."""
    residuals = log_actual - log_pred
    scale = mape_scale(residuals)
    return float(np.mean(np.abs(1.0 - scale * np.exp(-residuals))))


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.array_split(order, k)


def _out_of_fold(
    spec: ModelSpec,
    features: Features,
    log_price: np.ndarray,
    folds: list[np.ndarray],
    cities: list[str],
) -> np.ndarray:
    predictions = np.empty(len(log_price))
    for held in folds:
        train = np.setdiff1d(np.arange(len(log_price)), held)
        model = PriceModel(spec, cities).fit(features.take(train), log_price[train])
        predictions[held] = model.predict_log(features.take(held))
    return predictions


def choose_model(
    features: Features,
    log_price: np.ndarray,
    cities: list[str],
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress = _no_progress,
) -> tuple[ModelSpec, np.ndarray, list[dict[str, Any]]]:
    """Pick the model by out-of-fold MAPE; returns the spec, its out-of-fold log predictions
    and the table of every candidate's score."""
    splits = _folds(len(log_price), folds, seed)
    table: list[dict[str, Any]] = []
    oof: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
    candidates = [("gam", c) for c in GAM_CANDIDATES] + [("trees", c) for c in TREE_CANDIDATES]
    for i, (family, settings) in enumerate(candidates):
        progress(f"Korsvaliderar {family} {settings}", i / (len(candidates) + 1))
        spec = ModelSpec(
            gam=settings if family == "gam" else {},
            trees=settings if family == "trees" else {},
            gam_weight=1.0 if family == "gam" else 0.0,
        )
        predictions = _out_of_fold(spec, features, log_price, splits, cities)
        score = scaled_mape(log_price, predictions)
        table.append({"family": family, "settings": settings, "cv_mape": score})
        best = oof.get(family)
        if best is None or score < scaled_mape(log_price, best[1]):
            oof[family] = (settings, predictions)
    (gam_settings, gam_pred), (tree_settings, tree_pred) = oof["gam"], oof["trees"]
    blend_scores = {
        float(w): scaled_mape(log_price, w * gam_pred + (1 - w) * tree_pred) for w in BLEND_WEIGHTS
    }
    weight = min(blend_scores, key=blend_scores.get)
    for w, score in blend_scores.items():
        table.append({"family": "blend", "settings": {"gam_weight": w}, "cv_mape": score})
    spec = ModelSpec(gam=gam_settings, trees=tree_settings, gam_weight=weight)
    return spec, weight * gam_pred + (1 - weight) * tree_pred, table


def evaluate(model: PriceModel, inputs: pd.DataFrame, prices: np.ndarray) -> dict[str, Any]:
    """MAPE, interval coverage and mean relative width on labelled data, overall and per
    testing interval."""
    price, lower, upper = model.quote(encode(inputs, model.cities))
    covered = (prices >= lower) & (prices <= upper)
    width = (upper - lower) / price
    ape = np.abs(prices - price) / prices
    per_interval = {}
    for column in INTERVAL_COLUMNS:
        rows = inputs[column].to_numpy() == 1
        if rows.any():
            per_interval[column] = {
                "n": int(rows.sum()),
                "mape": float(ape[rows].mean()),
                "coverage": float(covered[rows].mean()),
            }
    return {
        "n": len(prices),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "coverage": float(covered.mean()),
        "mean_relative_width": float(width.mean()),
        "per_interval": per_interval,
    }


def train_model(
    quotes: pd.DataFrame,
    *,
    level: float = 0.90,
    seed: int = 0,
    holdout: float = 0.2,
    folds: int = 5,
    progress: Progress = _no_progress,
) -> TrainingResult:
    """Train on validated quotes (the nine inputs and `pris`) and report how it did."""
    if len(quotes) < MIN_ROWS:
        raise ValueError(f"at least {MIN_ROWS} valid training rows are needed, got {len(quotes)}")
    started = time.perf_counter()
    quotes = quotes.reset_index(drop=True)
    counts = quotes["stad"].value_counts()
    cities = sorted(counts.index)
    log_price = np.log(quotes[TARGET].to_numpy(dtype=float))
    features = encode(quotes, cities)

    order = np.random.default_rng([seed, 7]).permutation(len(quotes))
    n_hold = int(round(holdout * len(quotes)))
    hold, fit_rows = np.sort(order[:n_hold]), np.sort(order[n_hold:])

    spec, oof_pred, table = choose_model(
        features.take(fit_rows),
        log_price[fit_rows],
        cities,
        folds=folds,
        seed=seed,
        progress=progress,
    )
    oof_residuals = log_price[fit_rows] - oof_pred

    progress("Mäter på undanhållen data", 0.85)
    model = PriceModel(spec, cities).fit(features.take(fit_rows), log_price[fit_rows])
    model.calibrate(features.take(fit_rows), oof_residuals, level)
    holdout_report = evaluate(model, quotes.iloc[hold], quotes[TARGET].to_numpy(float)[hold])
    hold_residuals = log_price[hold] - model.predict_log(features.take(hold))

    progress("Tränar slutlig modell på all data", 0.95)
    final = PriceModel(spec, cities).fit(features, log_price)
    final.calibrate(
        features.take(np.concatenate([fit_rows, hold])),
        np.concatenate([oof_residuals, hold_residuals]),
        level,
    )
    report = {
        "rows": len(quotes),
        "holdout_rows": int(n_hold),
        "level": level,
        "spec": {"gam": spec.gam, "trees": spec.trees, "gam_weight": spec.gam_weight},
        "model_choice": table,
        "holdout": holdout_report,
        "city_counts": {str(k): int(v) for k, v in counts.items()},
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    progress("Klar", 1.0)
    return TrainingResult(final, report)


def read_training_data(path: Path) -> tuple[pd.DataFrame, list[RowError], str]:
    """Validated training quotes from a CSV/XLSX file, the rejected rows, and the file's sha256.

    Rows that cannot be used (a bad input or price) are left out and reported, not guessed at.
    """
    data = Path(path).read_bytes()
    sheet = read_table(data, training=True)
    validation = validate_table(sheet.canonical(), sheet.columns, sheet.rows)
    prices, price_errors = parse_training_prices(sheet.canonical(), sheet.rows)
    prices.index = sheet.frame.index
    errors = sorted([*validation.errors, *price_errors], key=lambda e: e.row)
    bad_rows = {e.row for e in errors}
    quotes = validation.inputs[~validation.inputs.index.isin(bad_rows)].copy()
    quotes[TARGET] = prices.loc[quotes.index]
    return quotes, errors, hashlib.sha256(data).hexdigest()


def train_file(
    data_path: Path,
    models_dir: Path,
    *,
    level: float = 0.90,
    activate: bool = True,
    progress: Progress = _no_progress,
    track: bool = True,
    warn: Callable[[str], None] | None = None,
) -> str:
    """Train on a file of historical quotes and save a new model version; returns its name.

    With MLFLOW_TRACKING_URI set (and `track`), the saved version is also logged to MLflow as a
    run and registered (`avarn_core.tracking`); a tracking failure is reported to `warn` (or,
    without it, by `progress`) and does not undo the saved version.
    """
    quotes, rejected, digest = read_training_data(data_path)
    result = train_model(quotes, level=level, progress=progress)
    sample = quotes.sample(min(len(quotes), 5000), random_state=0)
    contributions = result.model.contributions_kr(encode(sample, result.model.cities))
    result.report["training_data"] = {
        "path": str(data_path),
        "sha256": digest,
        "rows": len(quotes),
        "rows_rejected": len({e.row for e in rejected}),
        "rejected": [str(e) for e in rejected[:REJECTED_KEPT]],
    }
    result.report["training_profile"] = profile_inputs(quotes)
    result.report["global_importance"] = dict(
        zip(EXPLAINED_INPUTS, np.abs(contributions).mean(axis=0).round(2).tolist(), strict=True)
    )
    version = save_version(models_dir, result.model, result.report, activate_it=activate)
    tracking_uri = get_settings().mlflow_tracking_uri if track else None
    if tracking_uri:
        from avarn_core.tracking import track_if_configured

        track_if_configured(models_dir, version, tracking_uri, progress, warn=warn)
    return version


def ensure_active_model(
    models_dir: Path,
    training_data: Path,
    *,
    level: float = 0.90,
    progress: Progress = _no_progress,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The active version's name; on a fresh machine, train the default model first."""
    version = active_version(models_dir)
    if version is not None:
        return version
    return train_file(training_data, models_dir, level=level, progress=progress, warn=warn)


@dataclass(frozen=True)
class RetrainingPlan:
    """How to replace an active version that this version of Avarn Pris cannot read."""

    version: str  # the unreadable active version (kept on disk, never deleted)
    data: Path | None  # the file to train on; None when there is none
    same_data: bool  # `data` is the very file the old version was trained on (sha256 matches)
    level: float  # the old version's interval level, so the promise stays the same


def retraining_plan(models_dir: Path, default_data: Path, default_level: float) -> RetrainingPlan:
    """Retrain on the data the active version was trained on when that file is still there
    unchanged (same sha256), else on `default_data` (data/training_data.csv), else nothing."""
    metadata = active_metadata(models_dir)
    recorded = metadata.get("training_data") or {}
    path = Path(recorded.get("path") or "")
    same = (
        bool(recorded.get("path"))
        and path.is_file()
        and hashlib.sha256(path.read_bytes()).hexdigest() == recorded.get("sha256")
    )
    data = path if same else (Path(default_data) if Path(default_data).is_file() else None)
    return RetrainingPlan(
        version=metadata["version"],
        data=data,
        same_data=same,
        level=float(metadata.get("level") or default_level),
    )
