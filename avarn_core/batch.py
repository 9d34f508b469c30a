"""Pricing a whole spreadsheet: every good row priced, every bad row told why, nothing dropped.

The result table has the spreadsheet's own columns untouched (extra ones included), then the
six quote keys, `warning` and `error`; with `explain`, `base_price` and one
`contribution_<input>` column per input. Rows are in the spreadsheet's order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from avarn_core.explain import round_to_total
from avarn_core.io import Sheet
from avarn_core.predict import Predictor
from avarn_core.schema import QUOTE_KEYS, RowError, validate_table

CHUNK_ROWS = 20_000


@dataclass
class BatchResult:
    table: pd.DataFrame  # the spreadsheet's columns + quote keys + warning + error (+ explanation)
    quotes: pd.DataFrame  # priced rows: canonical inputs, quote keys, warning (for the log)
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0  # time to validate and price

    @property
    def n_rows(self) -> int:
        return len(self.table)

    @property
    def n_priced(self) -> int:
        return len(self.quotes)

    @property
    def n_warnings(self) -> int:
        return int(self.quotes["warning"].notna().sum())

    @property
    def n_error_rows(self) -> int:
        return len({e.row for e in self.errors})


def quote_sheet(
    sheet: Sheet,
    predictor: Predictor,
    *,
    explain: bool = False,
    progress: Callable[[float], None] | None = None,
) -> BatchResult:
    """Validate and price every row of `sheet`; `progress` gets the fraction done."""
    started = time.perf_counter()
    validation = validate_table(sheet.canonical(), sheet.columns, sheet.rows)
    errors = validation.errors
    inputs = validation.inputs
    parts, explained = [], []
    for start in range(0, len(inputs), CHUNK_ROWS):
        chunk = inputs.iloc[start : start + CHUNK_ROWS]
        parts.append(predictor.quote_frame(chunk))
        if explain:
            explained.append(predictor.explain_frame(chunk))
        if progress is not None:
            progress(min(1.0, (start + len(chunk)) / max(len(inputs), 1)))
    quotes = pd.concat(parts) if parts else predictor.quote_frame(inputs)

    table = sheet.frame.copy()
    for key in [*QUOTE_KEYS, "warning"]:
        table[key] = quotes[key].reindex(table.index)
    for key in ["predicted_price", "confidence_interval_lower", "confidence_interval_upper"]:
        table[key] = table[key].astype("Int64")
    messages: dict[int, list[str]] = {}
    for error in errors:
        messages.setdefault(error.row, []).append(str(error))
    table["error"] = pd.Series(
        ["; ".join(messages[row]) if row in messages else None for row in table.index],
        index=table.index,
        dtype=object,
    )
    if explain:
        exact = pd.concat(explained) if explained else predictor.explain_frame(inputs)
        whole = _whole_kronor(exact, quotes["predicted_price"])
        table = table.join(whole.astype("Int64"))  # rows with errors stay empty, not 0.0
    return BatchResult(
        table=table, quotes=quotes, errors=errors, seconds=time.perf_counter() - started
    )


def _whole_kronor(exact: pd.DataFrame, prices: pd.Series) -> pd.DataFrame:
    """Base price and contributions in whole kronor that add up exactly to each quoted price."""
    base = exact["base_price"].round().astype("int64")
    parts = exact.drop(columns="base_price")
    whole = round_to_total(parts.to_numpy(), (prices.loc[exact.index] - base).to_numpy())
    out = pd.DataFrame(whole, index=exact.index, columns=parts.columns)
    out.insert(0, "base_price", base)
    return out


def error_frame(errors: list[RowError]) -> pd.DataFrame:
    """Errors as a table with Swedish column names, for showing to users."""
    return pd.DataFrame(
        {
            "Rad": [e.row for e in errors],
            "Kolumn": [e.column for e in errors],
            "Värde": [e.value for e in errors],
            "Fel": [e.message for e in errors],
        },
        columns=["Rad", "Kolumn", "Värde", "Fel"],
    ).astype({"Rad": np.int64})
