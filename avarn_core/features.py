"""The versioned feature pipeline: validated inputs → the numbers the model sees.

Bump FEATURE_PIPELINE_VERSION whenever the encoding changes; a model records the version it was
trained with and is refused by a pipeline of another version.

Encoding (version 1):
- the four counts as they are (the model takes log1p where it needs a scale);
- ventilation 0/1;
- the testing interval as one ordered level: årsvis 0, kvartalsvis 1, månadsvis 2;
- the city as an index into the cities seen in training, matched on a folded key so that
  "goteborg", "GÖTEBORG" and "Göteborg" are one city; -1 for a city never seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from avarn_core.schema import COUNT_COLUMNS, INTERVAL_COLUMNS, fold

FEATURE_PIPELINE_VERSION = "1"
# The explained inputs: the three interval flags are one input for a customer.
EXPLAINED_INPUTS = [*COUNT_COLUMNS, "ventilation", "stad", "testintervall"]


@dataclass(frozen=True)
class Features:
    counts: np.ndarray  # (n, 4) float, in COUNT_COLUMNS order
    ventilation: np.ndarray  # (n,) float 0/1
    frequency: np.ndarray  # (n,) int 0, 1, 2 (årsvis, kvartalsvis, månadsvis)
    city: np.ndarray  # (n,) int index into the model's cities, -1 when unseen

    def __len__(self) -> int:
        return len(self.city)

    def take(self, rows: np.ndarray) -> Features:
        return Features(
            self.counts[rows], self.ventilation[rows], self.frequency[rows], self.city[rows]
        )

    def with_city(self, city: int) -> Features:
        return Features(
            self.counts, self.ventilation, self.frequency, np.full(len(self), city, dtype=int)
        )


def city_lookup(cities: Sequence[str]) -> dict[str, int]:
    """Folded city name → index in `cities`."""
    return {fold(name): i for i, name in enumerate(cities)}


def match_cities(names: Sequence[str], cities: Sequence[str] | dict[str, int]) -> np.ndarray:
    """Index of each name among `cities` (any case, with or without å/ä/ö); -1 when unseen.

    >>> match_cities(["goteborg", "Kiruna"], ["Göteborg", "Stockholm"]).tolist()
    [0, -1]
    """
    lookup = cities if isinstance(cities, dict) else city_lookup(cities)
    unique, inverse = np.unique(np.asarray(names, dtype=object).astype(str), return_inverse=True)
    found = np.array([lookup.get(fold(name), -1) for name in unique], dtype=int)
    return found[inverse.reshape(-1)]


def encode(inputs: Mapping[str, Sequence], cities: Sequence[str] | dict[str, int]) -> Features:
    """Encode validated inputs: a DataFrame, or a mapping of column → values (one quote)."""
    levels = np.zeros(len(inputs["stad"]), dtype=int)
    for level, column in enumerate(INTERVAL_COLUMNS):
        levels[np.asarray(inputs[column]) == 1] = level
    return Features(
        counts=np.column_stack([np.asarray(inputs[c], dtype=float) for c in COUNT_COLUMNS]),
        ventilation=np.asarray(inputs["ventilation"], dtype=float),
        frequency=levels,
        city=match_cities(inputs["stad"], cities),
    )
