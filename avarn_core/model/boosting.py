"""Gradient-boosted trees on log price (LightGBM), monotone by construction.

LightGBM enforces monotone constraints in the tree construction, handles the city as a native
categorical feature, and computes exact TreeSHAP values (`pred_contrib`) in C++ for any of its
encodings; the booster is stored as LightGBM's own text format, so loading a model unpickles
nothing.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from avarn_core.features import EXPLAINED_INPUTS, Features
from avarn_core.model import NotFittedError

# Matrix columns: four counts, ventilation, interval level, city index.
_MONOTONE = [1, 1, 1, 1, 1, 1, 0]
_CITY_COLUMN = 6
# Matrix column → explained input (counts, ventilation, testintervall, stad).
_TO_INPUT = [0, 1, 2, 3, 4, EXPLAINED_INPUTS.index("testintervall"), EXPLAINED_INPUTS.index("stad")]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.1,
    "num_leaves": 8,
    "min_data_in_leaf": 10,
    "min_data_per_group": 5,
    "cat_smooth": 5,
    "monotone_constraints": _MONOTONE,
    "monotone_constraints_method": "advanced",
    "deterministic": True,
    "force_row_wise": True,
    "seed": 0,
    "verbosity": -1,
}


def _matrix(features: Features, city: np.ndarray | None = None) -> np.ndarray:
    city = features.city if city is None else city
    return np.column_stack(
        [features.counts, features.ventilation, features.frequency, city]
    ).astype(np.float64)


class BoostedTrees:
    def __init__(self, num_rounds: int = 300, **params: Any) -> None:
        self.num_rounds = num_rounds
        self.params = {**DEFAULT_PARAMS, **params}
        self.booster_: lgb.Booster | None = None

    def fit(self, features: Features, log_price: np.ndarray, n_cities: int) -> BoostedTrees:
        if (features.city < 0).any():
            raise ValueError("training rows must all have a known city")
        data = lgb.Dataset(
            _matrix(features), log_price, categorical_feature=[_CITY_COLUMN], free_raw_data=True
        )
        self.booster_ = lgb.train(self.params, data, num_boost_round=self.num_rounds)
        self.city_share_ = np.bincount(features.city, minlength=n_cities) / len(features)
        return self

    def _booster(self) -> lgb.Booster:
        if self.booster_ is None:
            raise NotFittedError("BoostedTrees: call fit() before predicting")
        return self.booster_

    def _over_cities(self, features: Features, kind: str) -> np.ndarray:
        """Predictions (or contributions) with unseen cities averaged over the known ones."""
        booster = self._booster()
        threads = 1 if len(features) < 1000 else 0  # threads cost more than they give on few rows
        contrib = kind == "contrib"

        def run(matrix: np.ndarray) -> np.ndarray:
            if not len(matrix):  # LightGBM divides by the row count
                return np.zeros((0, matrix.shape[1] + 1)) if contrib else np.zeros(0)
            return booster.predict(matrix, pred_contrib=contrib, num_threads=threads)

        out = run(_matrix(features))
        unseen = np.flatnonzero(features.city < 0)
        if len(unseen):
            part = features.take(unseen)
            out[unseen] = sum(
                share * run(_matrix(part, np.full(len(part), city)))
                for city, share in enumerate(self.city_share_)
                if share > 0
            )
        return out

    def predict_log(self, features: Features) -> np.ndarray:
        return self._over_cities(features, "value")

    @property
    def expected_log(self) -> float:
        """The TreeSHAP base value: the training expectation of the log prediction."""
        row = np.zeros((1, len(_MONOTONE)))
        return float(self._booster().predict(row, pred_contrib=True)[0, -1])

    def contributions(self, features: Features) -> np.ndarray:
        """Exact TreeSHAP values in log price, (n, len(EXPLAINED_INPUTS))."""
        raw = self._over_cities(features, "contrib")
        out = np.zeros((len(features), len(EXPLAINED_INPUTS)))
        for column, target in enumerate(_TO_INPUT):
            out[:, target] += raw[:, column]
        return out

    def to_text(self) -> str:
        return self._booster().model_to_string()

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_rounds": self.num_rounds,
            "params": self.params,
            "city_share": self.city_share_.tolist(),
        }

    @classmethod
    def from_saved(cls, data: dict[str, Any], text: str) -> BoostedTrees:
        model = cls(num_rounds=data["num_rounds"], **data["params"])
        model.booster_ = lgb.Booster(model_str=text)
        model.city_share_ = np.array(data["city_share"])
        return model
