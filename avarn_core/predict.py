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
from avarn_core.schema import (
    COUNT_COLUMNS,
    INPUT_COLUMNS,
    LABELS,
    QUOTE_KEYS,
    QuoteInput,
    by_unique,
    clean_city,
    fold,
)


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
    inputs: dict[str, Any]  # as priced: the city in the model's spelling
    warning: str | None = None


def unseen_city_warning(city: str) -> str:
    return (
        f"Staden '{city}' finns inte i modellens data; priset bygger på ett snitt av kända "
        "städer och är osäkrare"
    )


def beyond_range_warning(column: str, value: int, largest: float) -> str:
    return (
        f"{LABELS[column]} {value:,} är fler än modellen har sett (högst {largest:,.0f}); "
        "priset är en uppskattning utanför modellens erfarenhet, kontrollera det"
    ).replace(",", "\u00a0")


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

    def _warning(self, row: Mapping[str, Any], unseen: bool) -> str | None:
        """What the seller should know about this quote: an unseen city, sizes beyond the
        training data (where the model extrapolates and the interval says too little)."""
        parts = [unseen_city_warning(row["stad"])] if unseen else []
        for column, largest in zip(COUNT_COLUMNS, self.model.count_max, strict=True):
            if row[column] > largest:
                parts.append(beyond_range_warning(column, int(row[column]), largest))
        return "; ".join(parts) or None

    def _prepare(self, request: QuoteInput | Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Validated inputs with the city in the model's spelling, and whether it is unseen."""
        if not isinstance(request, QuoteInput):
            request = QuoteInput.model_validate(
                {k: v for k, v in dict(request).items() if k in INPUT_COLUMNS}
            )
        row = request.model_dump()
        city = self._lookup.get(fold(row["stad"]), -1)
        row["stad"] = self.model.cities[city] if city >= 0 else clean_city(row["stad"])
        return row, city < 0

    def quote_frame(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Quote validated inputs; returns the inputs (city in the model's spelling), the six
        quote keys and `warning`, on the same index."""
        out = inputs[INPUT_COLUMNS].copy()
        index = match_cities(out["stad"].astype(str), self._lookup)
        known = np.array(self.model.cities, dtype=object)
        out["stad"] = np.where(
            index >= 0,
            known[index.clip(0)],
            by_unique(out["stad"].astype(str), clean_city).to_numpy(dtype=object),
        )
        price, lower, upper = self.model.quote(encode(out, self._lookup))
        out["predicted_price"] = np.round(price).astype("int64")
        out["confidence_interval_lower"] = np.floor(lower).astype("int64")
        out["confidence_interval_upper"] = np.ceil(upper).astype("int64")
        out["model_version"] = self.version
        out["feature_pipeline_version"] = self.feature_pipeline_version
        out["prediction_id"] = [uuid.uuid4().hex for _ in range(len(out))]
        flagged = (index < 0) | (out[COUNT_COLUMNS].to_numpy() > self.model.count_max).any(axis=1)
        warnings = np.full(len(out), None, dtype=object)
        for position in np.flatnonzero(flagged):
            warnings[position] = self._warning(out.iloc[position], bool(index[position] < 0))
        out["warning"] = pd.Series(warnings, index=out.index, dtype=object)
        return out

    def quote(self, request: QuoteInput | Mapping[str, Any]) -> Quote:
        """Quote one request (validated by QuoteInput when given as a mapping)."""
        row, unseen = self._prepare(request)
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
            warning=self._warning(row, unseen),
        )

    def explain(self, inputs: QuoteInput | Mapping[str, Any]) -> Explanation:
        """Take one quote's price apart into kronor per input."""
        row, unseen = self._prepare(inputs)
        features = encode({k: [v] for k, v in row.items()}, self._lookup)
        contributions = self.model.contributions_kr(features)[0]
        price = self.model.quote(features)[0][0]
        return Explanation(
            float(price),
            self.model.base_price(),
            dict(zip(EXPLAINED_INPUTS, contributions.tolist(), strict=True)),
            row,
            self._warning(row, unseen),
        )

    def explain_frame(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """`base_price` and one `contribution_<input>` column per input, SEK, on the same index."""
        columns = [f"contribution_{name}" for name in EXPLAINED_INPUTS]
        if inputs.empty:
            return pd.DataFrame(columns=["base_price", *columns], index=inputs.index, dtype=float)
        contributions = self.model.contributions_kr(encode(inputs, self._lookup))
        out = pd.DataFrame(contributions, index=inputs.index, columns=columns)
        out.insert(0, "base_price", self.model.base_price())
        return out
