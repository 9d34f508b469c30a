"""Reading spreadsheets the way Swedish Excel writes them, and writing them back safely.

Reading: CSV with `;`, `,` or tab, UTF-8 with or without BOM or Windows-1252; XLSX (first
sheet). Headers match in any case and spacing, with or without å/ä/ö ("Antal detektorer",
"ANTAL_DETEKTORER"). Extra columns are kept as they are, and every row keeps its spreadsheet row
number (header = row 1). A file that cannot be read at all raises one `ReadError` with a Swedish
message; a row with a structural problem (more cells than headers) becomes a `RowError`.

Writing: text cells that a spreadsheet would run as a formula (starting with = + - @, tab or
CR) get a leading apostrophe; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from avarn_core.schema import (
    COUNT_COLUMNS,
    INTERVAL_COLUMNS,
    LABELS,
    QUOTE_KEYS,
    TARGET,
    RowError,
    fold,
)

MAX_ROWS = 200_000
MAX_BYTES = 100 * 1024 * 1024

_ALIASES = {
    "antal_sektioner": ["antal_sektioner", "sektioner", "antal_larmsektioner", "larmsektioner"],
    "antal_detektorer": ["antal_detektorer", "detektorer", "antal_branddetektorer"],
    "antal_larmdon": ["antal_larmdon", "larmdon"],
    "dörrhållarmagneter": [
        "dorrhallarmagneter",
        "antal_dorrhallarmagneter",
        "dorrhallare",
        "antal_dorrhallare",
    ],
    "ventilation": ["ventilation", "ventilationsstopp", "ventilationsavstangning"],
    "stad": ["stad", "ort", "kommun"],
    "testintervall": ["testintervall", "intervall", "provningsintervall", "provintervall"],
    "årsvis": ["arsvis"],
    "kvartalsvis": ["kvartalsvis"],
    "månadsvis": ["manadsvis"],
    TARGET: ["pris", "pris_sek", "pris_kr", "arspris"],
}
_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
# Columns our own output adds; a results file uploaded again gets them recomputed, not doubled.
OUTPUT_COLUMNS = [*QUOTE_KEYS, "warning", "error", "base_price"]


class ReadError(ValueError):
    """The file as a whole cannot be read; the message is Swedish and meant for the user."""


@dataclass
class Sheet:
    """A read spreadsheet: cells as read, indexed by spreadsheet row number."""

    frame: pd.DataFrame
    columns: dict[str, str]  # canonical name → the spreadsheet's header
    errors: list[RowError] = field(default_factory=list)
    separator: str = ";"

    @property
    def rows(self) -> np.ndarray:
        return self.frame.index.to_numpy()

    def canonical(self) -> pd.DataFrame:
        """The recognised columns under their canonical names."""
        return self.frame[list(self.columns.values())].set_axis(list(self.columns), axis=1)


def header_key(header: object) -> str:
    """'Antal Dörrhållar-magneter ' → 'antal_dorrhallar_magneter'."""
    return re.sub(r"[^a-z0-9]+", "_", fold(str(header))).strip("_")


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ReadError(
            "Filen är varken UTF-8 eller Windows-1252; spara den som CSV UTF-8 "
            "eller som Excel-arbetsbok (.xlsx)"
        ) from None


def _separator(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (";", ",", "\t")}
    return max(counts, key=counts.get)


def _read_csv(data: bytes) -> tuple[list[list[object]], str]:
    text = _decode(data)
    first = next((line for line in text.splitlines() if line.strip()), "")
    separator = _separator(first)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    return records, separator


def _read_xlsx(data: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise ReadError(f"Excel-filen kunde inte läsas ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_table(source: bytes | str | Path | BinaryIO, *, training: bool = False) -> Sheet:
    """Read a CSV or XLSX file (path, bytes or binary file object) into a `Sheet`.

    Raises ReadError for a file that is empty, not a spreadsheet, too large, or missing a
    required column. With `training=True` the price column `pris` is required too.
    """
    if isinstance(source, str | Path):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ReadError(f"Filen {source} kunde inte öppnas: {exc.strerror}") from None
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
    if len(data) > MAX_BYTES:
        raise ReadError(f"Filen är större än {MAX_BYTES // 2**20} MB")
    if not data.strip():
        raise ReadError("Filen är tom")
    separator = ";"
    if data.startswith(b"PK\x03\x04"):
        records = _read_xlsx(data)
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ReadError("Gamla Excel-filer (.xls) stöds inte; spara som .xlsx eller CSV")
    elif b"\x00" in data[:4096]:
        raise ReadError("Filen är inget kalkylark; ladda upp CSV eller Excel (.xlsx)")
    else:
        records, separator = _read_csv(data)
    return _to_sheet(records, separator, training)


def _to_sheet(records: list[list[object]], separator: str, training: bool) -> Sheet:
    header_at = next((i for i, r in enumerate(records) if not all(_blank(v) for v in r)), None)
    if header_at is None:
        raise ReadError("Filen är tom")
    header = [("" if v is None else str(v)).strip() for v in records[header_at]]
    while header and not header[-1]:
        header.pop()
    width = len(header)
    names = [h or f"kolumn_{i + 1}" for i, h in enumerate(header)]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ReadError(f"Kolumnen '{duplicate}' finns två gånger i rubrikraden")
    columns = _map_columns(names, training)

    cells, row_numbers, errors = [], [], []
    for offset, record in enumerate(records[header_at + 1 :]):
        row = header_at + 2 + offset  # spreadsheet numbering starts at 1
        if all(_blank(v) for v in record):
            continue
        extra = record[width:]
        if any(not _blank(v) for v in extra):
            errors.append(
                RowError(
                    row,
                    "",
                    str(len(record)),
                    f"raden har fler värden ({len(record)}) än rubrikraden "
                    f"({width}); kontrollera avgränsaren",
                )
            )
            continue
        cells.append(list(record[:width]) + [None] * (width - len(record)))
        row_numbers.append(row)
        if len(cells) > MAX_ROWS:
            raise ReadError(f"Filen har fler än {MAX_ROWS:,} rader; dela upp den".replace(",", " "))
    if not cells and not errors:
        raise ReadError("Filen har en rubrikrad men inga rader att prisa")
    frame = pd.DataFrame(
        cells, columns=names, index=pd.Index(row_numbers, name="rad"), dtype=object
    )
    frame = frame.drop(
        columns=[
            c
            for c in names
            if header_key(c) in OUTPUT_COLUMNS or header_key(c).startswith("contribution_")
        ]
    )
    return Sheet(frame, columns, errors, separator)


def _map_columns(names: list[str], training: bool) -> dict[str, str]:
    columns: dict[str, str] = {}
    for name in names:
        canonical = _CANONICAL.get(header_key(name))
        if canonical is None:
            continue
        if canonical in columns:
            raise ReadError(
                f"Kolumnerna '{columns[canonical]}' och '{name}' betyder samma sak "
                f"({LABELS.get(canonical, canonical)}); ta bort en av dem"
            )
        columns[canonical] = name
    required = [*COUNT_COLUMNS, "ventilation", "stad"] + ([TARGET] if training else [])
    missing = [LABELS.get(c, c) for c in required if c not in columns]
    if "testintervall" not in columns:
        flags = [c for c in INTERVAL_COLUMNS if c not in columns]
        if len(flags) == len(INTERVAL_COLUMNS):
            missing.append("Testintervall (eller kolumnerna Årsvis, Kvartalsvis, Månadsvis)")
        else:
            missing += [c.capitalize() for c in flags]
    else:
        for flag in INTERVAL_COLUMNS:  # one interval column wins; stray flag columns pass through
            columns.pop(flag, None)
    if missing:
        found = ", ".join(f"'{n}'" for n in names[:15])
        raise ReadError(f"Kolumn saknas: {', '.join(missing)}. Filen har kolumnerna {found}")
    return columns


# -- writing -----------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+([.,]\d+)?$")


def _safe_text(value: object) -> object:
    """ "=HYPERLINK(…)" → "'=HYPERLINK(…)"; "-12" and other plain numbers are not formulas."""
    formula = isinstance(value, str) and value.startswith(_FORMULA_START)
    return "'" + value if formula and not _PLAIN_NUMBER.match(value) else value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of `frame` where text cells that a spreadsheet would run as a formula get a "'"."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(_safe_text)
    out.columns = [_safe_text(c) for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame, separator: str = ";") -> bytes:
    """CSV as Swedish Excel opens it: UTF-8 with BOM, formulas neutralised."""
    text = neutralise_formulas(frame).to_csv(index=False, sep=separator, lineterminator="\r\n")
    return b"\xef\xbb\xbf" + text.encode("utf-8")


def to_xlsx_bytes(frame: pd.DataFrame, sheet_name: str = "Offerter") -> bytes:
    """An .xlsx workbook of `frame`; text never becomes a formula, numbers stay numbers."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_name)
    safe = neutralise_formulas(frame)
    sheet.append([str(c) for c in safe.columns])
    for row in safe.itertuples(index=False, name=None):
        sheet.append([_cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
