"""Reading spreadsheets the way Swedish Excel writes them, and writing them back safely.

Reading: CSV with `;`, `,` or tab (or Excel's `sep=;` first line), UTF-8 with or without BOM,
UTF-16 ("Unicode-text") or Windows-1252; XLSX (first sheet). Headers match in any case and
spacing, with or without å/ä/ö ("Antal detektorer", "ANTAL_DETEKTORER"), and may sit under a
title row or two. Extra columns are kept as they are (data in an untitled column too), and
every row keeps its spreadsheet row number. A file that cannot be read at all raises one
`ReadError` with a Swedish message. Reading is bounded: at most MAX_ROWS rows with data,
MAX_COLUMNS columns and MAX_BYTES bytes, whatever the file claims about itself.

Writing: text cells that a spreadsheet would run as a formula (starting with = + - @, tab or
CR) get a leading apostrophe; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from avarn_core.schema import COUNT_COLUMNS, INTERVAL_COLUMNS, LABELS, QUOTE_KEYS, TARGET, fold

MAX_ROWS = 200_000
MAX_RECORDS = 2 * MAX_ROWS  # rows read in all, blank ones included
MAX_COLUMNS = 200
MAX_BYTES = 50 * 1024 * 1024
HEADER_SEARCH_ROWS = 10

# Aliases in order of preference: when "Stad" and "Ort" both exist, Stad is the city and Ort
# passes through as an extra column.
_ALIASES = {
    "antal_sektioner": ["antal_sektioner", "sektioner", "antal_larmsektioner", "larmsektioner"],
    "antal_detektorer": ["antal_detektorer", "detektorer", "antal_branddetektorer"],
    "antal_larmdon": ["antal_larmdon", "larmdon"],
    "dörrhållarmagneter": [
        "dorrhallarmagneter",
        "antal_dorrhallarmagneter",
        "dorrhallar_magneter",
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
_CANONICAL = {
    alias: (name, rank) for name, aliases in _ALIASES.items() for rank, alias in enumerate(aliases)
}
# Columns our own output adds; a results file uploaded again gets them recomputed, not doubled.
OUTPUT_COLUMNS = [*QUOTE_KEYS, "warning", "error", "base_price"]


class ReadError(ValueError):
    """The file as a whole cannot be read; the message is Swedish and meant for the user."""


@dataclass
class Sheet:
    """A read spreadsheet: cells as read, indexed by spreadsheet row number."""

    frame: pd.DataFrame
    columns: dict[str, str]  # canonical name → the spreadsheet's header
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
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:4096]:
        raise ReadError("Filen är inget kalkylark; ladda upp CSV eller Excel (.xlsx)")
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


def _csv_records(data: bytes) -> tuple[Iterator[list[object]], str]:
    """Records and the separator: Excel's `sep=;` hint, else the commonest of ; , tab in the
    first non-empty line."""
    stream = io.StringIO(_decode(data), newline="")
    first = stream.readline()
    declared = re.match(r'^"?sep=(.)"?\s*$', first.strip("\r\n"))
    if declared:  # Excel hides this line, so its row 1 is the line after it
        return csv.reader(stream, delimiter=declared.group(1)), declared.group(1)
    line = first if first.strip() else next((ln for ln in stream if ln.strip()), "")
    counts = {sep: line.count(sep) for sep in (";", ",", "\t")}
    separator = max(counts, key=counts.get)
    stream.seek(0)
    return csv.reader(stream, delimiter=separator), separator


def _xlsx_records(data: bytes) -> Iterator[list[object]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        # The declared <dimension> may be stale or absurd: read what is really there, bounded.
        sheet.reset_dimensions()
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            yield list(row)
    except ReadError:
        raise
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise ReadError(f"Excel-filen kunde inte läsas ({type(exc).__name__})") from None


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
        data = source.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ReadError(f"Filen är större än {MAX_BYTES // 2**20} MB; dela upp den")
    if not data.strip():
        raise ReadError("Filen är tom")
    if data.startswith(b"PK\x03\x04"):
        return _to_sheet(_xlsx_records(data), ";", training)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ReadError("Gamla Excel-filer (.xls) stöds inte; spara som .xlsx eller CSV")
    records, separator = _csv_records(data)
    return _to_sheet(records, separator, training)


def _recognised(record: list[object]) -> int:
    return sum(header_key(v) in _CANONICAL for v in record if not _blank(v))


def _to_sheet(records: Iterator[list[object]], separator: str, training: bool) -> Sheet:
    numbered = zip(itertools.count(1), records, strict=False)  # spreadsheet rows start at 1
    # The header is the first row naming at least three inputs, among the first non-empty rows
    # (a title row above it is common); failing that, the first non-empty row.
    candidates: list[tuple[int, list[object]]] = []
    for row, record in numbered:
        if not all(_blank(v) for v in record):
            candidates.append((row, record))
            if _recognised(record) >= 3 or len(candidates) == HEADER_SEARCH_ROWS:
                break
    if not candidates:
        raise ReadError("Filen är tom")
    header_row, header = next(((r, h) for r, h in candidates if _recognised(h) >= 3), candidates[0])
    names = [("" if v is None else str(v)).strip() for v in header[:MAX_COLUMNS]]
    while names and not names[-1]:
        names.pop()

    cells, row_numbers = [], []
    leftover = [(r, rec) for r, rec in candidates if r > header_row]
    for row, record in itertools.chain(leftover, numbered):
        if row - header_row > MAX_RECORDS:
            raise ReadError(f"Filen har fler än {MAX_RECORDS:,} rader".replace(",", " "))
        record = list(record[:MAX_COLUMNS])
        if all(_blank(v) for v in record):
            continue
        cells.append(record)
        row_numbers.append(row)
        if len(cells) > MAX_ROWS:
            raise ReadError(f"Filen har fler än {MAX_ROWS:,} rader; dela upp den".replace(",", " "))
    if not cells:
        raise ReadError("Filen har en rubrikrad men inga rader att prisa")
    width = max(len(names), *(len(r) for r in cells))
    while width > len(names) and all(len(r) < width or _blank(r[width - 1]) for r in cells):
        width -= 1
    raw = names + [""] * (width - len(names))
    names = _unique_names(raw)
    columns, renamed = _map_columns(raw, names, training)
    cells = [r[:width] + [None] * (width - len(r)) for r in cells]
    frame = pd.DataFrame(
        cells, columns=names, index=pd.Index(row_numbers, name="rad"), dtype=object
    )
    frame = frame.drop(columns=renamed["dropped"]).rename(columns=renamed["renamed"])
    columns = {k: renamed["renamed"].get(v, v) for k, v in columns.items()}
    return Sheet(frame, columns, separator)


def _unique_names(names: list[str]) -> list[str]:
    """Untitled columns get 'kolumn_N'; a repeated title gets ' (2)', ' (3)' …"""
    out: list[str] = []
    for i, name in enumerate(names):
        name = name or f"kolumn_{i + 1}"
        candidate, n = name, 2
        while candidate in out:
            candidate, n = f"{name} ({n})", n + 1
        out.append(candidate)
    return out


def _is_output(name: str) -> bool:
    key = header_key(name)
    return key in OUTPUT_COLUMNS or key.startswith("contribution_")


def _map_columns(raw: list[str], names: list[str], training: bool) -> tuple[dict[str, str], dict]:
    """Canonical name → header (`names`, made unique from `raw`), and what to do with columns
    named like our own output."""
    columns: dict[str, str] = {}
    ranks: dict[str, int] = {}
    for title, name in zip(raw, names, strict=True):
        canonical, rank = _CANONICAL.get(header_key(title), (None, None))
        if canonical is None:
            continue
        if canonical in columns and rank == ranks[canonical]:
            raise ReadError(
                f"Kolumnerna '{columns[canonical]}' och '{name}' betyder samma sak "
                f"({LABELS.get(canonical, canonical)}); ta bort en av dem"
            )
        if canonical not in columns or rank < ranks[canonical]:
            columns[canonical], ranks[canonical] = name, rank
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
    # A results file uploaded again: our own output columns are recomputed, not doubled. A
    # user's column that merely shares a name with ours is kept, under a name that says so.
    ours = [n for n in names if _is_output(n) and n not in columns.values()]
    reupload = {header_key(n) for n in ours} >= set(QUOTE_KEYS)
    renamed = {
        "dropped": ours if reupload else [],
        "renamed": {} if reupload else {n: f"{n} (indata)" for n in ours},
    }
    return columns, renamed


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
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            # Vectorised: only text cells that start like a formula are looked at one by one.
            try:
                risky = values.str.startswith(_FORMULA_START, na=False).to_numpy(dtype=bool)
            except AttributeError:  # an object column without any text (numbers from XLSX)
                continue
            if risky.any():
                values = values.copy()
                values[risky] = values[risky].map(_safe_text)
                out[column] = values
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
