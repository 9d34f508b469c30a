"""Quotes: one input or a whole table → price, 90 % interval and the keys of the original API.

Prices are whole kronor; the interval's bounds are rounded outwards so that it always holds
the quoted price. A city the model has never seen is priced as the training-weighted average of
the known cities, with a warning on that quote.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avarn_core.features import (
    EXPLAINED_INPUTS,
    FEATURE_PIPELINE_VERSION,
    city_lookup,
    encode,
    match_cities,
)
from avarn_core.registry import LoadedModel, load_version
from avarn_core.schema import INPUT_COLUMNS, QUOTE_KEYS, QuoteInput, clean_city, fold


@dataclass(frozen=True)
class Quote:
    predicted_price: int
    confidence_interval_lower: int
    confidence_interval_upper: int
    model_version: str
    feature_pipeline_version: str
    prediction_id: str
    inputs: dict[str, Any]  # as priced: the city in the model's spelling
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The six keys of the original API."""
        return {key: getattr(self, key) for key in QUOTE_KEYS}


@dataclass(frozen=True)
class Explanation:
    """A price taken apart: base_price + Σ contributions = price (SEK, unrounded)."""

    price: float
    base_price: float
    contributions: dict[str, float]  # EXPLAINED_INPUTS → SEK
    inputs: dict[str, Any]


def unseen_city_warning(city: str) -> str:
    return (
        f"Staden '{city}' finns inte i modellens data; priset bygger på ett snitt av kända "
        "städer och är osäkrare"
    )


class Predictor:
    """A loaded model version that prices and explains."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.model = loaded.model
        self.metadata = loaded.metadata
        self.version = loaded.version
        self.feature_pipeline_version = FEATURE_PIPELINE_VERSION
        self._lookup = city_lookup(self.model.cities)

    @classmethod
    def load(cls, models_dir: Path | str, version: str | None = None) -> Predictor:
        return cls(load_version(Path(models_dir), version))

    @property
    def cities(self) -> list[str]:
        return list(self.model.cities)

    def _canonical_cities(self, names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The model's spelling of each city and a mask of cities it has never seen."""
        index = match_cities(names, self._lookup)
        known = np.array(self.model.cities, dtype=object)
        spelled = np.where(
            index >= 0, known[index.clip(0)], names.map(clean_city).to_numpy(dtype=object)
        )
        return spelled, index < 0

    def quote_frame(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Quote validated inputs; returns the inputs (city in the model's spelling), the six
        quote keys and `warning`, on the same index."""
        out = inputs[INPUT_COLUMNS].copy()
        out["stad"], unseen = self._canonical_cities(out["stad"].astype(str))
        price, lower, upper = self.model.quote(encode(out, self._lookup))
        out["predicted_price"] = np.round(price).astype("int64")
        out["confidence_interval_lower"] = np.floor(lower).astype("int64")
        out["confidence_interval_upper"] = np.ceil(upper).astype("int64")
        out["model_version"] = self.version
        out["feature_pipeline_version"] = self.feature_pipeline_version
        out["prediction_id"] = [uuid.uuid4().hex for _ in range(len(out))]
        out["warning"] = pd.Series(
            np.where(unseen, [unseen_city_warning(c) for c in out["stad"]], None),
            index=out.index,
            dtype=object,
        )
        return out

    def quote(self, request: QuoteInput | Mapping[str, Any]) -> Quote:
        """Quote one request (validated by QuoteInput when given as a mapping)."""
        if not isinstance(request, QuoteInput):
            request = QuoteInput.model_validate(dict(request))
        row = request.model_dump()
        city = self._lookup.get(fold(row["stad"]), -1)
        row["stad"] = self.model.cities[city] if city >= 0 else clean_city(row["stad"])
        price, lower, upper = self.model.quote(
            encode({k: [v] for k, v in row.items()}, self._lookup)
        )
        return Quote(
            predicted_price=int(np.round(price[0])),
            confidence_interval_lower=int(np.floor(lower[0])),
            confidence_interval_upper=int(np.ceil(upper[0])),
            model_version=self.version,
            feature_pipeline_version=self.feature_pipeline_version,
            prediction_id=uuid.uuid4().hex,
            inputs=row,
            warning=unseen_city_warning(row["stad"]) if city < 0 else None,
        )

    def explain(self, inputs: Mapping[str, Any] | QuoteInput) -> Explanation:
        """Take one quote's price apart into kronor per input."""
        if not isinstance(inputs, QuoteInput):
            inputs = QuoteInput.model_validate(
                {k: v for k, v in dict(inputs).items() if k in INPUT_COLUMNS}
            )
        row = inputs.model_dump()
        features = encode({k: [v] for k, v in row.items()}, self._lookup)
        contributions = self.model.contributions_kr(features)[0]
        price = self.model.quote(features)[0][0]
        return Explanation(
            float(price),
            self.model.base_price(),
            dict(zip(EXPLAINED_INPUTS, contributions.tolist(), strict=True)),
            row,
        )

    def explain_frame(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """`base_price` and one `contribution_<input>` column per input, SEK, on the same index."""
        contributions = self.model.contributions_kr(encode(inputs, self._lookup))
        out = pd.DataFrame(
            contributions,
            index=inputs.index,
            columns=[f"contribution_{name}" for name in EXPLAINED_INPUTS],
        )
        out.insert(0, "base_price", self.model.base_price())
        return out
