"""A shape-constrained additive model of log price, monotone by construction.

    log price = mean + Σ_k s_k(z_k) + b_v·v + b_q·q + b_m·m + Σ_k z_k·(g_kv·v + g_kq·q + g_km·m)
                + city effect

with z_k = log1p(count k), v ventilation, q = 1 for kvartalsvis or månadsvis, m = 1 for
månadsvis, and s_k piecewise linear between knots at quantiles of the training counts. The
interactions let size matter more or less depending on ventilation and testing interval.

Monotonicity is a set of linear inequalities on the coefficients, imposed in the fit: the slope
of log price in z_k is b_segment + g_kv·v + g_kq·q + g_km·m, and the step for ventilation or a
more frequent interval is b + Σ_k g_k·z_k. Both are affine in the other inputs, so they are
non-negative everywhere on the input box (0 … schema upper bound) when they are non-negative at
its corners; the fit is a small quadratic programme with those corner constraints.

Its SHAP values are exact and cheap (interventional, training data as background): a term of one
input contributes f_t(x) - E f_t; a product term h(a)·g(b) splits as the Shapley formula for two
players says.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import minimize

from avarn_core.features import EXPLAINED_INPUTS, Features
from avarn_core.model import NotFittedError
from avarn_core.schema import COUNT_COLUMNS, UPPER_BOUNDS

N_COUNTS = len(COUNT_COLUMNS)
Z_MAX = np.log1p([UPPER_BOUNDS[c] for c in COUNT_COLUMNS])
# The interaction partners, in basis order: ventilation, "at least quarterly", "monthly".
_PARTNERS = 3


def _flags(features: Features) -> np.ndarray:
    """(n, 3): ventilation, at least kvartalsvis, månadsvis."""
    return np.column_stack(
        [features.ventilation, features.frequency >= 1, features.frequency >= 2]
    ).astype(float)


class MonotoneGAM:
    def __init__(self, n_knots: int = 4, alpha: float = 1e-6, city_prior: float = 5.0) -> None:
        self.n_knots = n_knots
        self.alpha = alpha
        # City effects are shrunk towards the average as if each city had `city_prior` extra
        # quotes at the average: a city seen twice does not get its own price level from two
        # quotes.
        self.city_prior = city_prior
        self.coef_: np.ndarray | None = None

    # -- basis ------------------------------------------------------------------------------
    def _segments(self, z: np.ndarray) -> list[np.ndarray]:
        columns = []
        for k, edges in enumerate(self.edges_):
            for low, high in itertools.pairwise(edges):
                columns.append(np.clip(z[:, k] - low, 0.0, high - low))
        return columns

    def _basis(self, features: Features) -> np.ndarray:
        """Design matrix without the city columns (they are handled as a lookup)."""
        z = np.log1p(features.counts)
        flags = _flags(features)
        interactions = [z[:, k] * flags[:, p] for k in range(N_COUNTS) for p in range(_PARTNERS)]
        return np.column_stack([*self._segments(z), flags, *interactions])

    def _layout(self) -> tuple[list[slice], slice, slice]:
        sizes = [len(edges) - 1 for edges in self.edges_]
        starts = np.cumsum([0, *sizes])
        segments = [slice(starts[k], starts[k + 1]) for k in range(N_COUNTS)]
        main = slice(starts[-1], starts[-1] + _PARTNERS)
        inter = slice(main.stop, main.stop + N_COUNTS * _PARTNERS)
        return segments, main, inter

    def _constraints(self, n_params: int) -> np.ndarray:
        segments, main, inter = self._layout()
        rows = []
        corners = [(v, q, m) for v in (0, 1) for q in (0, 1) for m in (0, 1) if m <= q]
        for k, seg in enumerate(segments):  # slope in z_k on each segment, at each flag corner
            for column in range(seg.start, seg.stop):
                for corner in corners:
                    row = np.zeros(n_params)
                    row[column] = 1.0
                    row[inter.start + k * _PARTNERS : inter.start + (k + 1) * _PARTNERS] = corner
                    rows.append(row)
        for p in range(_PARTNERS):  # the step of each flag, at each corner of the count box
            for z in itertools.product(*[(0.0, hi) for hi in Z_MAX]):
                row = np.zeros(n_params)
                row[main.start + p] = 1.0
                for k in range(N_COUNTS):
                    row[inter.start + k * _PARTNERS + p] = z[k]
                rows.append(row)
        return np.array(rows)

    # -- fit / predict ------------------------------------------------------------------------
    def fit(self, features: Features, log_price: np.ndarray, n_cities: int) -> MonotoneGAM:
        z = np.log1p(features.counts)
        quantiles = np.linspace(0, 1, self.n_knots + 2)[1:-1]
        self.edges_ = []
        for k in range(N_COUNTS):
            positive = z[z[:, k] > 0, k]
            knots = np.unique(np.quantile(positive, quantiles)) if len(positive) else []
            self.edges_.append(np.array([0.0, *[q for q in knots if 0 < q < Z_MAX[k]], Z_MAX[k]]))
        if (features.city < 0).any():
            raise ValueError("training rows must all have a known city")
        basis = self._basis(features)
        cities = np.zeros((len(features), n_cities))
        cities[np.arange(len(features)), features.city] = 1.0
        design = np.column_stack([basis, cities, np.ones(len(features))])
        n, n_params = design.shape
        y_mean = float(log_price.mean())
        penalty = np.concatenate(
            [np.full(basis.shape[1], self.alpha), np.full(n_cities, self.city_prior / n), [0.0]]
        )
        gram = design.T @ design / n + np.diag(penalty)
        target = design.T @ (log_price - y_mean) / n
        constraints = self._constraints(basis.shape[1])
        constraints = np.column_stack([constraints, np.zeros((len(constraints), n_cities + 1))])
        result = minimize(
            lambda b: 0.5 * b @ gram @ b - target @ b,
            np.zeros(n_params),
            jac=lambda b: gram @ b - target,
            method="SLSQP",
            constraints=[
                {"type": "ineq", "fun": lambda b: constraints @ b, "jac": lambda b: constraints}
            ],
            options={"maxiter": 1000, "ftol": 1e-12},
        )
        if not result.success and result.status != 8:  # 8: positive directional derivative
            raise RuntimeError(f"GAM fit did not converge: {result.message}")
        coef = result.x
        # Tiny negative slack from the solver must not break monotonicity: project onto bounds.
        self.coef_ = coef[: basis.shape[1]]
        self.city_effect_ = coef[basis.shape[1] : -1]
        self.mean_ = y_mean + float(coef[-1])
        self._repair(constraints[:, : basis.shape[1]])
        self.basis_mean_ = basis.mean(axis=0)
        self.z_mean_ = z.mean(axis=0)
        self.flag_mean_ = _flags(features).mean(axis=0)
        self.city_share_ = np.bincount(features.city, minlength=n_cities) / len(features)
        return self

    def _repair(self, constraints: np.ndarray) -> None:
        """Raise main coefficients just enough that every corner constraint holds exactly."""
        segments, main, _ = self._layout()
        for _ in range(3):
            slack = constraints @ self.coef_
            if (slack >= 0).all():
                return
            for i in np.flatnonzero(slack < 0):
                column = int(np.flatnonzero(constraints[i, : main.stop])[0])
                self.coef_[column] += -slack[i] + 1e-12
        if (constraints @ self.coef_ < 0).any():
            raise RuntimeError("GAM coefficients violate the monotonicity constraints")

    def _check(self) -> None:
        if self.coef_ is None:
            raise NotFittedError("MonotoneGAM: call fit() before predicting")

    def _city_effect(self, features: Features) -> np.ndarray:
        # An unseen city gets the training-weighted average city effect.
        average = float(self.city_share_ @ self.city_effect_)
        return np.where(features.city >= 0, self.city_effect_[features.city.clip(0)], average)

    def predict_log(self, features: Features) -> np.ndarray:
        self._check()
        return self.mean_ + self._basis(features) @ self.coef_ + self._city_effect(features)

    @property
    def expected_log(self) -> float:
        """E f(X) over the training data: the base value of the explanations."""
        self._check()
        city = self.city_share_ @ self.city_effect_
        return float(self.mean_ + self.basis_mean_ @ self.coef_ + city)

    def contributions(self, features: Features) -> np.ndarray:
        """Exact SHAP values in log price, (n, len(EXPLAINED_INPUTS)); rows sum to f(x) - E f."""
        self._check()
        segments, main, inter = self._layout()
        index = {name: i for i, name in enumerate(EXPLAINED_INPUTS)}
        z = np.log1p(features.counts)
        flags = _flags(features)
        basis = self._basis(features)
        out = np.zeros((len(features), len(EXPLAINED_INPUTS)))
        for k, seg in enumerate(segments):
            out[:, k] = (basis[:, seg] - self.basis_mean_[seg]) @ self.coef_[seg]
        b = self.coef_[main]
        out[:, index["ventilation"]] += b[0] * (flags[:, 0] - self.flag_mean_[0])
        out[:, index["testintervall"]] += (flags[:, 1:] - self.flag_mean_[1:]) @ b[1:]
        mean_city = self.city_share_ @ self.city_effect_
        out[:, index["stad"]] = self._city_effect(features) - mean_city
        g = self.coef_[inter].reshape(N_COUNTS, _PARTNERS)
        # Group the partners by input: ventilation alone; both interval flags together.
        groups = ((index["ventilation"], [0]), (index["testintervall"], [1, 2]))
        for k in range(N_COUNTS):
            for partner, ps in groups:
                g_x = flags[:, ps] @ g[k, ps]  # g(b) at x
                g_mean = self.flag_mean_[ps] @ g[k, ps]  # E g(B)
                cols = [inter.start + k * _PARTNERS + p for p in ps]
                zg_mean = self.basis_mean_[cols] @ g[k, ps]  # E[h(A) g(B)]
                h_x, h_mean = z[:, k], self.z_mean_[k]
                out[:, k] += 0.5 * ((h_x * g_mean - zg_mean) + (h_x * g_x - h_mean * g_x))
                out[:, partner] += 0.5 * ((h_mean * g_x - zg_mean) + (h_x * g_x - h_x * g_mean))
        return out

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "n_knots": self.n_knots,
            "alpha": self.alpha,
            "city_prior": self.city_prior,
            "edges": [e.tolist() for e in self.edges_],
            "coef": self.coef_.tolist(),
            "city_effect": self.city_effect_.tolist(),
            "mean": self.mean_,
            "basis_mean": self.basis_mean_.tolist(),
            "z_mean": self.z_mean_.tolist(),
            "flag_mean": self.flag_mean_.tolist(),
            "city_share": self.city_share_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonotoneGAM:
        model = cls(n_knots=data["n_knots"], alpha=data["alpha"], city_prior=data["city_prior"])
        model.edges_ = [np.array(e) for e in data["edges"]]
        model.coef_ = np.array(data["coef"])
        model.city_effect_ = np.array(data["city_effect"])
        model.mean_ = float(data["mean"])
        model.basis_mean_ = np.array(data["basis_mean"])
        model.z_mean_ = np.array(data["z_mean"])
        model.flag_mean_ = np.array(data["flag_mean"])
        model.city_share_ = np.array(data["city_share"])
        return model
