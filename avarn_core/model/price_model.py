"""The price model: a blend of the monotone GAM and monotone trees on log price, with a
MAPE-optimal scale and split-conformal 90 % intervals.

Steps happen in order and say so: `fit` → `calibrate` → `quote`. Blending in log space keeps
monotonicity (a weighted sum of non-decreasing functions is non-decreasing) and keeps SHAP
values exact (Shapley values are linear in the model).

Explanations in kronor: with log-space contributions φ_i (summing to S) around the base value E,
the price is base·exp(S) where base = scale·exp(E). Each input gets
    base · φ_i · (exp(S) − 1) / S
kronor, so the contributions keep the signs of φ and add up exactly to price − base.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avarn_core.features import Features
from avarn_core.model import NotFittedError
from avarn_core.model.boosting import BoostedTrees
from avarn_core.model.gam import MonotoneGAM


@dataclass(frozen=True)
class ModelSpec:
    """What model choice picked: settings of both parts and the GAM's share of the blend."""

    gam: dict[str, Any]
    trees: dict[str, Any]
    gam_weight: float


# A testing interval needs this many residuals of its own to get its own interval width.
MIN_GROUP_RESIDUALS = 50
# Rows used to measure how far each city's prices lie from the average city.
CITY_SAMPLE_ROWS = 2000


@dataclass(frozen=True)
class Calibration:
    """Point scale and interval bounds, per testing interval (årsvis, kvartalsvis, månadsvis).

    The bounds are conformal quantiles of log(actual) − log(prediction), computed separately for
    each testing interval (Mondrian conformal prediction) so that the coverage holds within each
    interval, not only on average; an interval with too few residuals uses the pooled bounds.

    A city the model has never seen is priced as the average city, so its error is the usual
    error plus how far its true price level lies from the average. Not knowing that, the unseen
    bounds treat the new city like a draw from the known ones: quantiles of every residual plus
    every known city's distance from the average, weighted by how common the city is.
    """

    level: float
    scale: float  # multiplies exp(log prediction): the MAPE-optimal point price
    log_lower: list[float]  # by interval level 0, 1, 2
    log_upper: list[float]
    unseen_log_lower: list[float]
    unseen_log_upper: list[float]
    n_residuals: list[int]


def mape_scale(log_residuals: np.ndarray) -> float:
    """The factor c minimising mean |actual − c·prediction| / actual.

    Σ |1 − c·p/y| = Σ (p/y)·|y/p − c|, so c is the weighted median of y/p with weights p/y.
    """
    ratio = np.exp(log_residuals)
    order = np.argsort(ratio)
    weights = 1.0 / ratio[order]
    cumulative = np.cumsum(weights)
    return float(ratio[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def conformal_bounds(
    log_residuals: np.ndarray, level: float, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Split-conformal quantiles with the finite-sample correction, one tail each side.

    With `weights` (summing to the number of residuals n) the k-th smallest value becomes the
    first value whose cumulative weight reaches k. Infinite when n is too small for the level.
    """
    values = np.asarray(log_residuals, dtype=float)
    weights = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    order = np.argsort(values)
    r, cumulative = values[order], np.cumsum(weights[order])
    n = round(cumulative[-1])
    tail = (1.0 - level) / 2.0
    eps = 1e-9  # (1 - 0.9) / 2 is 0.04999… in floating point
    k_low = int(np.floor((n + 1) * tail + eps))
    k_high = int(np.ceil((n + 1) * (1.0 - tail) - eps))
    low = r[np.searchsorted(cumulative, k_low - eps)] if k_low >= 1 else -np.inf
    high = r[min(np.searchsorted(cumulative, k_high - eps), len(r) - 1)] if k_high <= n else np.inf
    return float(low), float(high)


def min_residuals(level: float) -> int:
    """The fewest residuals that give finite conformal bounds at `level`."""
    tail = (1.0 - level) / 2.0
    return int(np.ceil((1.0 - tail) / tail - 1e-9))


def expm1_ratio(s: np.ndarray) -> np.ndarray:
    """(exp(s) − 1) / s, with its limit 1 at s = 0."""
    s = np.asarray(s, dtype=float)
    safe = np.where(np.abs(s) < 1e-12, 1.0, s)
    return np.where(np.abs(s) < 1e-12, 1.0 + s / 2.0, np.expm1(safe) / safe)


class PriceModel:
    def __init__(self, spec: ModelSpec, cities: list[str]) -> None:
        self.spec = spec
        self.cities = list(cities)
        self.gam: MonotoneGAM | None = None
        self.trees: BoostedTrees | None = None
        self.calibration: Calibration | None = None
        self.count_max: list[float] = []  # the largest count of each kind seen in training

    @property
    def _parts(self) -> list[tuple[float, MonotoneGAM | BoostedTrees]]:
        w = self.spec.gam_weight
        parts = [(w, self.gam), (1.0 - w, self.trees)]
        if any(model is None for weight, model in parts if weight > 0):
            raise NotFittedError("PriceModel: call fit() before predicting")
        return [(weight, model) for weight, model in parts if weight > 0]

    def fit(self, features: Features, log_price: np.ndarray) -> PriceModel:
        n_cities = len(self.cities)
        if self.spec.gam_weight > 0:
            self.gam = MonotoneGAM(**self.spec.gam).fit(features, log_price, n_cities)
        if self.spec.gam_weight < 1:
            self.trees = BoostedTrees(**self.spec.trees).fit(features, log_price, n_cities)
        self.count_max = features.counts.max(axis=0).tolist()
        self.calibration = None
        return self

    def predict_log(self, features: Features) -> np.ndarray:
        return sum(weight * model.predict_log(features) for weight, model in self._parts)

    @property
    def expected_log(self) -> float:
        return float(sum(weight * model.expected_log for weight, model in self._parts))

    def contributions_log(self, features: Features) -> np.ndarray:
        return sum(weight * model.contributions(features) for weight, model in self._parts)

    def city_deviations(self, features: Features) -> np.ndarray:
        """How far each known city's log price lies from the average city's, on these rows."""
        rows = features.take(np.arange(min(len(features), CITY_SAMPLE_ROWS)))
        average = self.predict_log(rows.with_city(-1))
        return np.array(
            [
                np.mean(self.predict_log(rows.with_city(c)) - average)
                for c in range(len(self.cities))
            ]
        )

    def city_shares(self) -> np.ndarray:
        part = self.gam if self.gam is not None else self.trees
        return np.asarray(part.city_share_)

    def calibrate(self, features: Features, log_residuals: np.ndarray, level: float) -> PriceModel:
        """Set the point scale and the intervals from out-of-sample residuals
        log(actual / prediction) of the rows in `features`."""
        self._parts  # noqa: B018 - raises when not fitted: calibrating an unfitted model is a bug
        residuals = np.asarray(log_residuals, dtype=float)
        needed = max(20, min_residuals(level))
        if len(residuals) < needed:
            raise ValueError(
                f"a {level:.0%} interval needs at least {needed} out-of-sample "
                f"residuals, got {len(residuals)}"
            )
        deviation, share = self.city_deviations(features), self.city_shares()
        known = share > 0
        deviation, share = deviation[known], share[known] / share[known].sum()

        def bounds(r: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
            spread = (r[:, None] + deviation[None, :]).ravel()
            weights = np.broadcast_to(share[None, :], (len(r), len(share))).ravel()
            return conformal_bounds(r, level), conformal_bounds(spread, level, weights)

        pooled = bounds(residuals)
        per_group, sizes = [], []
        for group in range(3):
            mine = residuals[features.frequency == group]
            sizes.append(len(mine))
            enough = len(mine) >= max(MIN_GROUP_RESIDUALS, min_residuals(level))
            per_group.append(bounds(mine) if enough else pooled)
        self.calibration = Calibration(
            level=level,
            scale=mape_scale(residuals),
            log_lower=[b[0][0] for b in per_group],
            log_upper=[b[0][1] for b in per_group],
            unseen_log_lower=[b[1][0] for b in per_group],
            unseen_log_upper=[b[1][1] for b in per_group],
            n_residuals=sizes,
        )
        return self

    def _calibrated(self) -> Calibration:
        if self.calibration is None:
            raise NotFittedError("PriceModel: call calibrate() before quoting")
        return self.calibration

    def quote(self, features: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Price, lower and upper bound of the interval, in SEK (unrounded)."""
        cal = self._calibrated()
        log_pred = self.predict_log(features)
        price = cal.scale * np.exp(log_pred)
        unseen = features.city < 0
        low = np.where(
            unseen,
            np.take(cal.unseen_log_lower, features.frequency),
            np.take(cal.log_lower, features.frequency),
        )
        high = np.where(
            unseen,
            np.take(cal.unseen_log_upper, features.frequency),
            np.take(cal.log_upper, features.frequency),
        )
        lower = np.minimum(np.exp(log_pred + low), price)
        upper = np.maximum(np.exp(log_pred + high), price)
        return price, lower, upper

    def base_price(self) -> float:
        """The price of the typical quote: the start of every explanation, in SEK."""
        return float(self._calibrated().scale * np.exp(self.expected_log))

    def contributions_kr(self, features: Features) -> np.ndarray:
        """SEK per explained input; each row sums to price − base_price."""
        phi = self.contributions_log(features)
        factor = self.base_price() * expm1_ratio(phi.sum(axis=1))
        return phi * factor[:, None]

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "cities": self.cities,
            "count_max": self.count_max,
            "calibration": asdict(self._calibrated()),
            "gam": self.gam.to_dict() if self.gam is not None else None,
            "trees": self.trees.to_dict() if self.trees is not None else None,
        }

    def trees_text(self) -> str | None:
        return self.trees.to_text() if self.trees is not None else None

    @classmethod
    def from_saved(cls, data: dict[str, Any], trees_text: str | None) -> PriceModel:
        model = cls(ModelSpec(**data["spec"]), data["cities"])
        if data["gam"] is not None:
            model.gam = MonotoneGAM.from_dict(data["gam"])
        if data["trees"] is not None:
            if trees_text is None:
                raise ValueError("the saved model needs its trees file")
            model.trees = BoostedTrees.from_saved(data["trees"], trees_text)
        model.count_max = data["count_max"]
        model.calibration = Calibration(**data["calibration"])
        return model
