"""The prediction log: every quote, every row that could not be priced, and actual prices.

>>> log = PredictionLog("sqlite:///logs/predictions.db")  # doctest: +SKIP
>>> log.log_quotes(quotes, source="app-single", user="anna")  # doctest: +SKIP
>>> log.record_actuals(pd.DataFrame({"prediction_id": [pid], "faktiskt_pris": [41_000]}))
... # doctest: +SKIP
ActualsResult(recorded=1, unknown_ids=[], errors=[])
>>> log.quotes(since=datetime(2025, 1, 1, tzinfo=UTC))  # doctest: +SKIP

A table of quotes is written in one transaction: all of its rows or none. Actual prices are
kept as a history (one row per recording); the current actual of a quote is its latest
recording, so a correction replaces the value without losing the earlier one.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from avarn_core.db import (
    SCHEMA_VERSION,
    actuals_table,
    errors_table,
    make_engine,
    quotes_table,
    schema_version,
    schema_version_table,
    transaction,
)
from avarn_core.io import neutralise_formulas
from avarn_core.schema import COUNT_COLUMNS, INPUT_COLUMNS, MAX_PRICE, QUOTE_KEYS

SOURCES = ("app-single", "app-batch", "cli", "api")
QUOTE_COLUMNS = [*INPUT_COLUMNS, *QUOTE_KEYS, "warning", "latency_ms"]
ERROR_COLUMNS = ["row", "column", "value", "reason"]
_INT_COLUMNS = [*COUNT_COLUMNS, "ventilation", "kvartalsvis", "månadsvis", "årsvis"]
_PRICE_COLUMNS = ["predicted_price", "confidence_interval_lower", "confidence_interval_upper"]
_TEXT_COLUMNS = ["stad", "model_version", "feature_pipeline_version", "prediction_id"]
MAX_ACTUAL_RATIO = 5.0  # an actual more than 5× above or below its quote is refused as a typo
_ID_CHUNK = 500  # ids per IN (...) lookup; well below SQLite's bound-parameter limit


class PredictionLogError(RuntimeError):
    """The prediction log cannot be used (health checks show this message)."""


@dataclass
class ActualsResult:
    """What `record_actuals` did: rows recorded, ids not in the log, rows that were invalid."""

    recorded: int = 0
    unknown_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unknown_ids and not self.errors

    def summary(self) -> str:
        """A Swedish summary for the user, one line per problem."""
        lines = [f"Registrerade faktiska priser: {self.recorded}"]
        lines += [f"Okänt prediction_id (inte registrerat): {pid}" for pid in self.unknown_ids]
        lines += self.errors
        return "\n".join(lines)


class PredictionLog:
    """The prediction log at `url` (SQLite file or PostgreSQL); created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> Engine:
        return make_engine(self.url)

    # -- writing ---------------------------------------------------------------------------

    def log_quotes(
        self,
        quotes: pd.DataFrame,
        *,
        source: str,
        batch_id: str | None = None,
        user: str | None = None,
    ) -> None:
        """Log priced quotes: INPUT_COLUMNS, QUOTE_KEYS, `warning`, `latency_ms` and
        optionally `created_at` (UTC; default now). All rows are written or none."""
        rows = _quote_rows(quotes, source=source, batch_id=batch_id, user=user)
        with transaction(self.engine) as conn:
            _insert(conn, quotes_table, rows)

    def log_quote(
        self,
        quote: Mapping[str, Any],
        *,
        source: str,
        batch_id: str | None = None,
        user: str | None = None,
    ) -> None:
        """Log one priced quote given as a mapping of the same columns as `log_quotes`.

        The same row as `log_quotes` writes for a one-row table, without building one: the
        per-request path of the API and the app's single quotes, where pandas' conversions
        cost more than the insert.
        """
        _check_source(source)
        missing = [c for c in QUOTE_COLUMNS if c not in quote]
        if missing:
            raise ValueError(f"quotes lack the columns {missing}")
        if _missing(quote["prediction_id"]):
            raise ValueError("every quote needs a prediction_id")
        created = quote.get("created_at")
        row: dict[str, Any] = {
            "source": source,
            "batch_id": batch_id,
            "user": user,
            "created_at": datetime.now(UTC) if created is None else _times_of([created])[0],
            **{c: int(quote[c]) for c in _INT_COLUMNS},
            **{c: float(quote[c]) for c in _PRICE_COLUMNS},
            **{c: str(quote[c]) for c in _TEXT_COLUMNS},
            "warning": None if _missing(quote["warning"]) else str(quote["warning"]),
            "latency_ms": None if _missing(quote["latency_ms"]) else float(quote["latency_ms"]),
        }
        with transaction(self.engine) as conn:
            _insert(conn, quotes_table, [row])

    def log_errors(
        self,
        errors: pd.DataFrame,
        *,
        source: str,
        batch_id: str | None = None,
        user: str | None = None,
    ) -> None:
        """Log rows or requests that could not be priced: `row` (spreadsheet row or None),
        `column`, `value`, `reason` (Swedish) and optionally `inputs` (JSON text)."""
        rows = _error_rows(errors, source=source, batch_id=batch_id, user=user)
        with transaction(self.engine) as conn:
            _insert(conn, errors_table, rows)

    def log_batch(
        self,
        quotes: pd.DataFrame,
        errors: pd.DataFrame,
        *,
        source: str,
        batch_id: str,
        user: str | None = None,
    ) -> None:
        """Log the quotes and the errors of one table in one transaction: all rows or none."""
        if not batch_id:
            raise ValueError("log_batch needs a batch_id")
        quote_rows = _quote_rows(quotes, source=source, batch_id=batch_id, user=user)
        error_rows = _error_rows(errors, source=source, batch_id=batch_id, user=user)
        with transaction(self.engine) as conn:
            _insert(conn, quotes_table, quote_rows)
            _insert(conn, errors_table, error_rows)

    def record_actuals(self, actuals: pd.DataFrame, *, user: str | None = None) -> ActualsResult:
        """Record agreed prices: columns `prediction_id`, `faktiskt_pris`, optional `datum`.

        Rows are numbered as in a spreadsheet (header on row 1) in the error messages. Valid
        rows for known ids are written in one transaction; unknown ids and invalid rows are
        reported in the result and not written. A later recording for the same id becomes the
        current actual; earlier ones stay in the history (`actuals()`).
        """
        for column in ("prediction_id", "faktiskt_pris"):
            if column not in actuals.columns:
                raise ValueError(f"Kolumnen '{column}' saknas")
        result = ActualsResult()
        problems: list[tuple[int, str]] = []
        dates = actuals["datum"] if "datum" in actuals.columns else [None] * len(actuals)
        parsed = []
        for position, (pid, price, day) in enumerate(
            zip(actuals["prediction_id"], actuals["faktiskt_pris"], dates, strict=True)
        ):
            row = position + 2
            pid = "" if _missing(pid) else str(pid).strip()
            amount = _parse_price(price)
            agreed = date.today() if _missing(day) or str(day).strip() == "" else _parse_date(day)
            if not pid:
                problems.append((row, f"Rad {row}: prediction_id saknas"))
            elif amount is None or amount > MAX_PRICE:
                problems.append(
                    (
                        row,
                        f"Rad {row}: '{_shown(price)}' är inget giltigt pris (ett "
                        "positivt belopp i kronor)",
                    )
                )
            elif agreed is None:
                problems.append(
                    (row, f"Rad {row}: '{_shown(day)}' är inget giltigt datum (ÅÅÅÅ-MM-DD)")
                )
            else:
                parsed.append((row, pid, amount, agreed))

        recorded_at = datetime.now(UTC)
        with transaction(self.engine) as conn:
            known = _known_ids(conn, {pid for _, pid, _, _ in parsed})
            # An actual far from its quote is almost always a typo ("45.230" read as 45,23 kr);
            # recording it would skew every accuracy figure, so it is reported instead.
            implausible = {
                row
                for row, pid, amount, _ in parsed
                if pid in known
                and not 1 / MAX_ACTUAL_RATIO <= amount / known[pid] <= MAX_ACTUAL_RATIO
            }
            for row, pid, amount, _ in parsed:
                if row in implausible:
                    given = f"{amount:,.2f}".replace(",", " ").replace(".", ",")
                    quoted = f"{known[pid]:,.0f}".replace(",", " ")
                    problems.append(
                        (
                            row,
                            f"Rad {row}: {given} kr ligger orimligt långt från "
                            f"offertens {quoted} kr; kontrollera beloppet",
                        )
                    )
            parsed = [
                (pid, amount, agreed)
                for row, pid, amount, agreed in parsed
                if row not in implausible
            ]
            rows = [
                {
                    "prediction_id": pid,
                    "faktiskt_pris": amount,
                    "datum": agreed,
                    "recorded_at": recorded_at,
                    "user": user,
                }
                for pid, amount, agreed in parsed
                if pid in known
            ]
            _insert(conn, actuals_table, rows)
        result.errors = [message for _, message in sorted(problems)]
        result.recorded = len(rows)
        result.unknown_ids = list(dict.fromkeys(pid for pid, _, _ in parsed if pid not in known))
        return result

    # -- reading ---------------------------------------------------------------------------

    def quotes(
        self, *, since: datetime | None = None, model_version: str | None = None
    ) -> pd.DataFrame:
        """One row per logged quote, oldest first, with its current actual price
        (`faktiskt_pris`, `faktiskt_datum`; NaN/NaT when none has been recorded)."""
        stmt = _quotes_select()
        if since is not None:
            stmt = stmt.where(quotes_table.c.created_at >= _utc(since))
        if model_version is not None:
            stmt = stmt.where(quotes_table.c.model_version == model_version)
        return _quotes_frame(self._read(stmt))

    def quote(self, prediction_id: str) -> dict[str, Any] | None:
        """One logged quote with its current actual, or None when the id is unknown."""
        stmt = _quotes_select().where(quotes_table.c.prediction_id == str(prediction_id))
        frame = _quotes_frame(self._read(stmt))
        if frame.empty:
            return None
        record = frame.to_dict("records")[0]  # native Python scalars
        return {k: (None if _missing(v) else v) for k, v in record.items()}

    def errors(self, *, since: datetime | None = None) -> pd.DataFrame:
        """One row per logged error, oldest first."""
        t = errors_table
        stmt = sa.select(*[c for c in t.c if c.name != "id"]).order_by(t.c.created_at, t.c.id)
        if since is not None:
            stmt = stmt.where(t.c.created_at >= _utc(since))
        frame = self._read(stmt)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        frame["row"] = frame["row"].astype("Int64")
        return frame

    def actuals(self, *, prediction_id: str | None = None) -> pd.DataFrame:
        """The full history of recorded actual prices, in the order they were recorded."""
        t = actuals_table
        stmt = sa.select(*[c for c in t.c if c.name != "id"]).order_by(t.c.id)
        if prediction_id is not None:
            stmt = stmt.where(t.c.prediction_id == prediction_id)
        frame = self._read(stmt)
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
        frame["datum"] = pd.to_datetime(frame["datum"])
        return frame

    def count(self) -> int:
        """The number of logged quotes."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(quotes_table)) or 0

    def check(self) -> None:
        """Raise PredictionLogError unless the log can be reached and is at the current schema."""
        try:
            version = schema_version(self.engine)
            self.count()
        except Exception as exc:
            raise PredictionLogError(f"Prediktionsloggen går inte att använda: {exc}") from exc
        if version < SCHEMA_VERSION:
            raise PredictionLogError(
                f"Prediktionsloggen har schemaversion {version}, {SCHEMA_VERSION} krävs"
            )

    def ping(self) -> None:
        """Raise PredictionLogError unless the log answers and is at the current schema.

        What a health probe asks several times a minute: like `check`, but it reads only the
        schema version and the highest quote id (an index lookup), never counts the quotes.
        """
        try:
            with self.engine.connect() as conn:
                version = conn.scalar(sa.select(sa.func.max(schema_version_table.c.version)))
                conn.scalar(sa.select(sa.func.max(quotes_table.c.id)))
        except Exception as exc:
            raise PredictionLogError(f"Prediktionsloggen går inte att använda: {exc}") from exc
        if (version or 0) < SCHEMA_VERSION:
            raise PredictionLogError(
                f"Prediktionsloggen har schemaversion {version or 0}, {SCHEMA_VERSION} krävs"
            )

    def _read(self, stmt: sa.Select) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


# -- exports ---------------------------------------------------------------------------------


def export_quotes(quotes: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write `predictions.csv` (all quotes) and one `predictions_YYYY-MM-DD.jsonl` per UTC day.

    Times are ISO 8601 in UTC, dates YYYY-MM-DD; the CSV is comma-separated UTF-8.
    Returns the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = quotes.copy()
    days = frame["created_at"].dt.strftime("%Y-%m-%d")
    frame["created_at"] = frame["created_at"].map(lambda t: t.isoformat())
    frame["faktiskt_datum"] = frame["faktiskt_datum"].dt.strftime("%Y-%m-%d")
    written = [out_dir / "predictions.csv"]
    # Opened in Excel by the analyst: text that would run as a formula is neutralised.
    neutralise_formulas(frame).to_csv(written[0], index=False, encoding="utf-8")
    for day, part in frame.groupby(days, sort=True):
        path = out_dir / f"predictions_{day}.jsonl"
        text = part.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_actuals_csv(path: Path) -> pd.DataFrame:
    """Read `prediction_id,faktiskt_pris[,datum]` as Swedish Excel writes it: `;` or `,`
    separated, UTF-8 (with or without BOM) or Windows-1252. All cells are kept as text."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    header = text.splitlines()[0] if text.strip() else ""
    separator = ";" if header.count(";") > header.count(",") else ","
    frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


# -- helpers ---------------------------------------------------------------------------------


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack the columns {missing}")


def _quote_rows(
    quotes: pd.DataFrame, *, source: str, batch_id: str | None, user: str | None
) -> list[dict[str, Any]]:
    _check_source(source)
    _require(quotes, QUOTE_COLUMNS, "quotes")
    if quotes["prediction_id"].isna().any():
        raise ValueError("every quote needs a prediction_id")
    columns: dict[str, list[Any]] = {
        "created_at": _times(quotes),
        **{c: quotes[c].astype("int64").tolist() for c in _INT_COLUMNS},
        **{c: quotes[c].astype("float64").tolist() for c in _PRICE_COLUMNS},
        **{c: quotes[c].astype(str).tolist() for c in _TEXT_COLUMNS},
        "warning": _nullable_text(quotes["warning"]),
        "latency_ms": _nullable(quotes["latency_ms"].astype("float64")),
    }
    return _records(columns, {"source": source, "batch_id": batch_id, "user": user})


def _error_rows(
    errors: pd.DataFrame, *, source: str, batch_id: str | None, user: str | None
) -> list[dict[str, Any]]:
    _check_source(source)
    _require(errors, ERROR_COLUMNS, "errors")
    if errors["reason"].isna().any():
        raise ValueError("every error needs a reason")
    inputs = errors["inputs"] if "inputs" in errors.columns else pd.Series([None] * len(errors))
    columns: dict[str, list[Any]] = {
        "created_at": _times(errors),
        "row": [None if _missing(r) else int(r) for r in errors["row"]],
        "column": _nullable_text(errors["column"]),
        "value": _nullable_text(errors["value"]),
        "reason": errors["reason"].astype(str).tolist(),
        "inputs": [_json_text(v) for v in inputs],
    }
    return _records(columns, {"source": source, "batch_id": batch_id, "user": user})


def _records(columns: dict[str, list[Any]], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """Column lists to one plain dict per row, with the `fixed` values in every row."""
    keys = [*fixed, *columns]
    constants = tuple(fixed.values())
    return [
        dict(zip(keys, constants + values, strict=True))
        for values in zip(*columns.values(), strict=True)
    ]


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    # One executemany of plain dicts: the driver batches it (pysqlite executemany,
    # psycopg2 "insertmanyvalues"), which is what makes 100,000 rows take about a second.
    if rows:
        conn.execute(table.insert(), rows)


def _times(frame: pd.DataFrame) -> list[datetime]:
    """`created_at` as aware UTC datetimes (naive values are taken as UTC); default now."""
    if "created_at" not in frame.columns:
        return [datetime.now(UTC)] * len(frame)
    return _times_of(frame["created_at"])


def _times_of(values: Any) -> list[datetime]:
    times = pd.to_datetime(pd.Series(values), utc=True)
    if times.isna().any():
        raise ValueError("created_at has missing values")
    return [t.to_pydatetime() for t in times]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _missing(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or value is pd.NA or value is pd.NaT


def _nullable(series: pd.Series) -> list[Any]:
    return [None if _missing(v) else v for v in series.tolist()]


def _nullable_text(series: pd.Series) -> list[str | None]:
    return [None if _missing(v) else str(v) for v in series.tolist()]


def _json_text(value: Any) -> str | None:
    """`inputs` as JSON text; a dict or list is serialised here for convenience."""
    if isinstance(value, str):
        return value
    if _missing(value):
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _shown(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _parse_price(value: Any) -> float | None:
    """A positive finite amount; Swedish text such as '45 230,50' is accepted."""
    if isinstance(value, bool) or _missing(value):
        return None
    if isinstance(value, str):
        text = "".join(value.split()).replace("\u00a0", "").replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            return None
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return amount if math.isfinite(amount) and amount > 0 else None


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).strip()).date()
    except ValueError:
        return None


def _known_ids(conn: Connection, ids: set[str]) -> dict[str, float]:
    """The quoted price of each of `ids` that is in the log."""
    known: dict[str, float] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _ID_CHUNK):
        chunk = ordered[start : start + _ID_CHUNK]
        stmt = sa.select(quotes_table.c.prediction_id, quotes_table.c.predicted_price).where(
            quotes_table.c.prediction_id.in_(chunk)
        )
        known.update((pid, float(price)) for pid, price in conn.execute(stmt))
    return known


def _quotes_select() -> sa.Select:
    """Quotes left-joined to their current actual (the latest recording per prediction)."""
    a = actuals_table
    latest = sa.select(sa.func.max(a.c.id).label("id")).group_by(a.c.prediction_id).subquery()
    current = (
        sa.select(a.c.prediction_id, a.c.faktiskt_pris, a.c.datum.label("faktiskt_datum"))
        .join(latest, a.c.id == latest.c.id)
        .subquery()
    )
    q = quotes_table
    return (
        sa.select(
            *[c for c in q.c if c.name != "id"], current.c.faktiskt_pris, current.c.faktiskt_datum
        )
        .outerjoin(current, current.c.prediction_id == q.c.prediction_id)
        .order_by(q.c.created_at, q.c.id)
    )


def _quotes_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["faktiskt_pris"] = frame["faktiskt_pris"].astype("float64")
    frame["faktiskt_datum"] = pd.to_datetime(frame["faktiskt_datum"])
    for column in ("latency_ms", *_PRICE_COLUMNS):
        frame[column] = frame[column].astype("float64")
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype(np.int64)
    return frame
