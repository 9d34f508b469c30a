"""The input contract: column names, plausible bounds, and validation of one quote or a table.

Names are those of the original API and are kept in files, the API and the log. Upper bounds are
plausibility limits for one contract (a large hospital or airport has a few thousand detectors);
a value beyond them is an input error, not a price.

Table validation is vectorised and never stops at the first bad cell: every bad cell becomes a
`RowError` in Swedish that names the spreadsheet row (as Excel numbers it, header on row 1), the
column (as the spreadsheet names it) and the value; the other rows stay valid.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COUNT_COLUMNS = ["antal_sektioner", "antal_detektorer", "antal_larmdon", "dörrhållarmagneter"]
# Least to most frequent testing; the price never falls along this order.
INTERVAL_COLUMNS = ["årsvis", "kvartalsvis", "månadsvis"]
INPUT_COLUMNS = [*COUNT_COLUMNS, "ventilation", "stad", "kvartalsvis", "månadsvis", "årsvis"]
TARGET = "pris"
QUOTE_KEYS = [
    "predicted_price",
    "confidence_interval_lower",
    "confidence_interval_upper",
    "model_version",
    "feature_pipeline_version",
    "prediction_id",
]

# The original API's request example: a mid-sized site tested monthly.
EXAMPLE_REQUEST: dict[str, object] = {
    "antal_sektioner": 8,
    "antal_detektorer": 25,
    "antal_larmdon": 15,
    "dörrhållarmagneter": 5,
    "ventilation": 1,
    "stad": "Stockholm",
    "kvartalsvis": 0,
    "månadsvis": 1,
    "årsvis": 0,
}

LOWER_BOUNDS = {
    "antal_sektioner": 1,
    "antal_detektorer": 0,
    "antal_larmdon": 0,
    "dörrhållarmagneter": 0,
}
UPPER_BOUNDS = {
    "antal_sektioner": 500,
    "antal_detektorer": 10_000,
    "antal_larmdon": 5_000,
    "dörrhållarmagneter": 2_000,
}
MAX_CITY_LENGTH = 60
MAX_PRICE = 5_000_000  # SEK a year; a training price above this is a data error

LABELS = {
    "antal_sektioner": "Antal sektioner",
    "antal_detektorer": "Antal detektorer",
    "antal_larmdon": "Antal larmdon",
    "dörrhållarmagneter": "Dörrhållarmagneter",
    "ventilation": "Ventilation",
    "stad": "Stad",
    "testintervall": "Testintervall",
    "pris": "Pris",
}
INTERVAL_LABELS = {"årsvis": "Årsvis", "kvartalsvis": "Kvartalsvis", "månadsvis": "Månadsvis"}


def fold(text: str) -> str:
    """Lower-case, strip accents (å→a, ö→o) and collapse spaces: the key names are matched on.

    >>> fold("  GÖTEBORG ")
    'goteborg'
    """
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", plain).strip().lower()


def by_unique(values: pd.Series, function) -> pd.Series:
    """`values.map(function)`, calling `function` once per distinct value (a column of 100,000
    cells holds a few dozen distinct cities or Ja/Nej)."""
    distinct = pd.unique(values.to_numpy())
    return values.map(dict(zip(distinct, map(function, distinct), strict=True)))


def clean_city(name: str) -> str:
    """Tidy a city name as typed: collapse spaces; all-lower or all-upper input gets title case."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(name))).strip()
    return text.title() if text.islower() or text.isupper() else text


class QuoteInput(BaseModel):
    """One quote request, exactly as the original API took it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    antal_sektioner: int = Field(ge=1, le=UPPER_BOUNDS["antal_sektioner"], examples=[8])
    antal_detektorer: int = Field(ge=0, le=UPPER_BOUNDS["antal_detektorer"], examples=[25])
    antal_larmdon: int = Field(ge=0, le=UPPER_BOUNDS["antal_larmdon"], examples=[15])
    dörrhållarmagneter: int = Field(ge=0, le=UPPER_BOUNDS["dörrhållarmagneter"], examples=[5])
    ventilation: int = Field(ge=0, le=1, examples=[1])
    stad: str = Field(min_length=1, max_length=MAX_CITY_LENGTH, examples=["Stockholm"])
    kvartalsvis: int = Field(default=0, ge=0, le=1, examples=[0])
    månadsvis: int = Field(default=0, ge=0, le=1, examples=[1])
    årsvis: int = Field(default=0, ge=0, le=1, examples=[0])

    @field_validator("stad")
    @classmethod
    def _printable_city(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("the city name contains control characters")
        return value

    @model_validator(mode="after")
    def _one_interval(self) -> QuoteInput:
        if self.kvartalsvis + self.månadsvis + self.årsvis != 1:
            raise ValueError("exactly one of årsvis, kvartalsvis, månadsvis must be 1")
        return self

    @property
    def interval(self) -> str:
        return next(c for c in INTERVAL_COLUMNS if getattr(self, c) == 1)


@dataclass(frozen=True)
class RowError:
    """A cell (or row) that cannot be priced. `row` is the spreadsheet row number, header = 1."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"Rad {self.row}, kolumn '{self.column}': {self.message}"


@dataclass
class TableValidation:
    """Typed, valid rows (index = spreadsheet row number) and the errors of the others."""

    inputs: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)


_TRUE = {"1", "ja", "j", "x", "sant", "true", "yes", "y"}
_FALSE = {"0", "nej", "n", "falskt", "false", "no"}
# Control characters (NUL, tabs, line breaks …) have no place in a city name; PostgreSQL cannot
# even store NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INTERVAL_WORDS = {
    "årsvis": {"arsvis", "ar", "arlig", "arligen", "arsprov", "1", "1/ar", "1 ggr/ar", "yearly"},
    "kvartalsvis": {"kvartalsvis", "kvartal", "kvartalsprov", "4", "4/ar", "4 ggr/ar", "quarterly"},
    "månadsvis": {
        "manadsvis",
        "manad",
        "manatlig",
        "manadsprov",
        "12",
        "12/ar",
        "12 ggr/ar",
        "monthly",
    },
}
_INTERVAL_BY_WORD = {word: col for col, words in _INTERVAL_WORDS.items() for word in words}


def _shown(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_text(series: pd.Series) -> pd.Series:
    """Cell values as stripped strings; missing cells become ''."""
    return series.astype("string").fillna("").str.strip()


def _parse_numbers(series: pd.Series) -> pd.Series:
    """Numbers as Swedish Excel writes them ('1 200', '12,5'); NaN where a cell is not a number."""
    text = _as_text(series).str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _parse_counts(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Whole numbers; returns the values and a mask of cells that are not whole numbers."""
    numbers = _parse_numbers(series)
    bad = numbers.isna() | (numbers != np.round(numbers))
    return numbers, bad.to_numpy()


def _parse_flags(series: pd.Series, blank_is_no: bool) -> tuple[pd.Series, np.ndarray]:
    """Ja/Nej, 1/0, x and the like as 0/1 (Excel numbers as 1.0 or 1,0 too); a blank cell is
    Nej only where `blank_is_no` (the interval flags, where one column is marked)."""
    text = by_unique(_as_text(series), fold).str.replace(r"[.,]0+$", "", regex=True)
    values = pd.Series(np.where(text.isin(_TRUE), 1, 0), index=series.index)
    bad = ~(text.isin(_TRUE) | text.isin(_FALSE) | (text.eq("") & blank_is_no))
    return values, bad.to_numpy()


def validate_table(
    frame: pd.DataFrame, headers: dict[str, str] | None = None, rows: np.ndarray | None = None
) -> TableValidation:
    """Validate a table whose columns already carry canonical names.

    The interval comes either as three 0/1 columns (`årsvis`, `kvartalsvis`, `månadsvis`) or as
    one `testintervall` column with words such as "Månadsvis". `headers` maps canonical names to
    the spreadsheet's own headers so that errors name the column the user sees. `rows` are the
    spreadsheet row numbers of the frame's rows (default 2, 3, …: header on row 1).

    >>> v = validate_table(pd.DataFrame({"antal_sektioner": ["8", "-1"],
    ...     "antal_detektorer": [25, 3], "antal_larmdon": [15, 1],
    ...     "dörrhållarmagneter": [5, 0], "ventilation": ["Ja", "Nej"],
    ...     "stad": ["Stockholm", "Lund"], "testintervall": ["Månadsvis", "Årsvis"]}))
    >>> len(v.inputs), str(v.errors[0])
    (1, "Rad 3, kolumn 'antal_sektioner': -1 är mindre än 1")
    """
    headers = headers or {}
    n = len(frame)
    rows = np.arange(2, 2 + n) if rows is None else np.asarray(rows)
    errors: list[RowError] = []
    out = pd.DataFrame(index=frame.index)

    def report(mask: np.ndarray, column: str, message_for) -> None:
        for position in np.flatnonzero(mask):
            value = frame[column].iloc[position] if column in frame else ""
            errors.append(
                RowError(
                    int(rows[position]),
                    headers.get(column, column),
                    _shown(value),
                    message_for(_shown(value)),
                )
            )

    for column in COUNT_COLUMNS:
        numbers, bad = _parse_counts(frame[column])
        missing = _as_text(frame[column]).eq("").to_numpy()
        report(missing, column, lambda v: "värde saknas")
        report(bad & ~missing, column, lambda v: f"'{v}' är inte ett heltal")
        low, high = LOWER_BOUNDS[column], UPPER_BOUNDS[column]
        too_low = ~bad & (numbers < low).to_numpy()
        too_high = ~bad & (numbers > high).to_numpy()
        report(too_low, column, lambda v, low=low: f"{v} är mindre än {low}")
        report(
            too_high,
            column,
            lambda v, high=high: f"{v} är större än rimliga {high:,}".replace(",", " "),
        )
        out[column] = numbers.fillna(0).clip(low, high).astype("int64")

    ventilation, bad = _parse_flags(frame["ventilation"], blank_is_no=False)
    missing = _as_text(frame["ventilation"]).eq("").to_numpy()
    report(missing, "ventilation", lambda v: "värde saknas (Ja eller Nej)")
    report(bad & ~missing, "ventilation", lambda v: f"'{v}' ska vara Ja eller Nej")
    out["ventilation"] = ventilation.astype("int64")

    city = _as_text(frame["stad"])
    report(city.eq("").to_numpy(), "stad", lambda v: "stad saknas")
    report(
        city.str.len().gt(MAX_CITY_LENGTH).to_numpy(),
        "stad",
        lambda v: f"stadens namn är längre än {MAX_CITY_LENGTH} tecken",
    )
    report(
        city.str.contains(_CONTROL).to_numpy(),
        "stad",
        lambda v: "stadens namn innehåller otillåtna tecken",
    )
    out["stad"] = by_unique(city, clean_city).astype(object)

    if "testintervall" in frame:
        words = by_unique(_as_text(frame["testintervall"]), fold)
        words = words.str.replace(r"[.,]0+$", "", regex=True)
        chosen = words.map(_INTERVAL_BY_WORD)
        report(
            chosen.isna().to_numpy(),
            "testintervall",
            lambda v: f"'{v}' är inget testintervall (Årsvis, Kvartalsvis eller Månadsvis)",
        )
        for column in INTERVAL_COLUMNS:
            out[column] = (chosen == column).astype("int64")
    else:
        flags = {}
        for column in INTERVAL_COLUMNS:
            flags[column], bad = _parse_flags(frame[column], blank_is_no=True)
            report(bad, column, lambda v: f"'{v}' ska vara 1 eller 0 (Ja eller Nej)")
            out[column] = flags[column].astype("int64")
        count = sum(flags.values()).to_numpy()
        label = "/".join(headers.get(c, c) for c in INTERVAL_COLUMNS)
        for position in np.flatnonzero(count != 1):
            errors.append(
                RowError(
                    int(rows[position]),
                    label,
                    str(int(count[position])),
                    "exakt ett testintervall ska vara markerat",
                )
            )

    out = out[INPUT_COLUMNS]
    out.index = pd.Index(rows, name="rad")
    errors.sort(key=lambda e: e.row)
    bad_rows = {e.row for e in errors}
    valid = out[~out.index.isin(bad_rows)]
    return TableValidation(inputs=valid, errors=errors)


def parse_training_prices(
    frame: pd.DataFrame, rows: np.ndarray | None = None
) -> tuple[pd.Series, list[RowError]]:
    """Training prices as numbers, and errors for those missing, not a number or implausible."""
    rows = np.arange(2, 2 + len(frame)) if rows is None else np.asarray(rows)
    numbers = _parse_numbers(frame[TARGET])
    bad = (numbers.isna() | (numbers <= 0) | (numbers > MAX_PRICE)).to_numpy()
    errors = []
    for position in np.flatnonzero(bad):
        value = _shown(frame[TARGET].iloc[position])
        limit = f"{MAX_PRICE:,}".replace(",", " ")
        errors.append(
            RowError(
                int(rows[position]),
                TARGET,
                value,
                f"'{value}' är inget rimligt pris (1–{limit} kr)",
            )
        )
    return numbers, errors
