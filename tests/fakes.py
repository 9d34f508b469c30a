"""Fake quotes and errors shaped as the pricing code hands them to the prediction log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

CITIES = ["Stockholm", "Göteborg", "Malmö", "Uppsala", "Lund"]


def fake_quotes(
    n: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    model_version: str = "v-test",
) -> pd.DataFrame:
    """`n` valid quotes with fresh UUID4 hex ids, one minute apart from `start`."""
    rng = np.random.default_rng(seed)
    interval = rng.integers(0, 3, n)
    price = rng.uniform(5_000, 80_000, n).round(2)
    start = start or datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    return pd.DataFrame(
        {
            "antal_sektioner": rng.integers(1, 40, n),
            "antal_detektorer": rng.integers(0, 400, n),
            "antal_larmdon": rng.integers(0, 120, n),
            "dörrhållarmagneter": rng.integers(0, 60, n),
            "ventilation": rng.integers(0, 2, n),
            "stad": rng.choice(CITIES, n),
            "kvartalsvis": (interval == 1).astype(int),
            "månadsvis": (interval == 2).astype(int),
            "årsvis": (interval == 0).astype(int),
            "predicted_price": price,
            "confidence_interval_lower": (price * 0.85).round(2),
            "confidence_interval_upper": (price * 1.15).round(2),
            "model_version": model_version,
            "feature_pipeline_version": "fp-1",
            "prediction_id": [uuid.uuid4().hex for _ in range(n)],
            "warning": None,
            "latency_ms": rng.uniform(1, 30, n),
            "created_at": [start + timedelta(minutes=i) for i in range(n)],
        }
    )


def fake_errors(n: int, *, first_row: int = 2) -> pd.DataFrame:
    """`n` spreadsheet-row errors with Swedish reasons."""
    return pd.DataFrame(
        {
            "row": list(range(first_row, first_row + n)),
            "column": "Antal sektioner",
            "value": "-1",
            "reason": "-1 är mindre än 1",
            "inputs": '{"antal_sektioner": "-1"}',
        }
    )
