"""The one way the faces price: a predictor and the prediction log together.

Every quote made through `PricingService` is logged, whichever face asked (app, CLI, API), and
so is every request or row that could not be priced. A table is logged in one transaction.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import ValidationError

from avarn_core.batch import BatchResult, quote_sheet
from avarn_core.io import Sheet
from avarn_core.predict import Explanation, Predictor, Quote
from avarn_core.predlog import PredictionLog
from avarn_core.schema import INPUT_COLUMNS, QuoteInput
from avarn_core.settings import Settings


def validation_messages(error: ValidationError) -> list[str]:
    """Pydantic's errors as 'field: message' lines."""
    return [f"{'.'.join(str(p) for p in e['loc']) or 'indata'}: {e['msg']}" for e in error.errors()]


@dataclass(frozen=True)
class ItemResult:
    """One item of a list of requests: its quote, or why it could not be priced."""

    index: int  # position in the list, from 0
    quote: Quote | None = None
    errors: list[str] = field(default_factory=list)  # 'field: message' lines

    @property
    def ok(self) -> bool:
        return self.quote is not None


@dataclass(frozen=True)
class ItemsResult:
    """A list of requests priced together and logged as one batch."""

    batch_id: str
    items: list[ItemResult]

    @property
    def n_priced(self) -> int:
        return sum(item.ok for item in self.items)

    @property
    def n_errors(self) -> int:
        return len(self.items) - self.n_priced


@dataclass
class PricingService:
    predictor: Predictor
    log: PredictionLog

    @classmethod
    def from_settings(cls, settings: Settings) -> PricingService:
        return cls(Predictor.load(settings.models_dir), PredictionLog(settings.db_url))

    def quote(
        self, request: QuoteInput | Mapping[str, Any], *, source: str, user: str | None = None
    ) -> Quote:
        """Price and log one request. An invalid request is logged as an error and re-raised."""
        started = time.perf_counter()
        try:
            quote = self.predictor.quote(request)
        except ValidationError as exc:
            self.log_rejected(request, validation_messages(exc), source=source, user=user)
            raise
        row = {
            **quote.inputs,
            **quote.to_dict(),
            "warning": quote.warning,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
        self.log.log_quote(row, source=source, user=user)
        return quote

    def log_rejected(
        self, request: Any, reasons: Sequence[str], *, source: str, user: str | None = None
    ) -> None:
        """Log one request that could not be priced (a face that validated it itself)."""
        self.log.log_errors(
            pd.DataFrame(
                {
                    "row": [None],
                    "column": [None],
                    "value": [None],
                    "reason": ["; ".join(reasons) or "ogiltig förfrågan"],
                    "inputs": [json.dumps(_jsonable(request), ensure_ascii=False)],
                }
            ),
            source=source,
            user=user,
        )

    def quote_items(
        self, requests: Sequence[Any], *, source: str, user: str | None = None
    ) -> ItemsResult:
        """Price a list of requests, each a mapping of the nine inputs (or a QuoteInput).

        Every item is validated on its own: a bad item gets its errors and the others are still
        priced. The quotes and the errors are logged in one transaction as one batch; an error's
        `row` in the log is the item's position in the list (from 0).
        """
        started = time.perf_counter()
        valid: list[tuple[int, QuoteInput]] = []
        failed: dict[int, list[str]] = {}
        for index, request in enumerate(requests):
            try:
                if isinstance(request, QuoteInput):
                    valid.append((index, request))
                elif isinstance(request, Mapping):
                    valid.append((index, QuoteInput.model_validate(dict(request))))
                else:
                    failed[index] = ["indata: posten ska vara ett objekt med de nio indata"]
            except ValidationError as exc:
                failed[index] = validation_messages(exc)

        inputs = pd.DataFrame([item.model_dump() for _, item in valid], columns=INPUT_COLUMNS)
        inputs.index = pd.Index([index for index, _ in valid])
        quotes = self.predictor.quote_frame(inputs)
        quotes["latency_ms"] = (time.perf_counter() - started) * 1000 / max(len(requests), 1)
        errors = pd.DataFrame(
            {
                "row": list(failed),
                "column": [None] * len(failed),
                "value": [None] * len(failed),
                "reason": ["; ".join(messages) for messages in failed.values()],
                "inputs": [
                    json.dumps(_jsonable(requests[index]), ensure_ascii=False) for index in failed
                ],
            }
        )
        batch_id = uuid.uuid4().hex
        self.log.log_batch(quotes, errors, source=source, batch_id=batch_id, user=user)

        by_index = {
            index: _quote_from_record(record)
            for index, record in zip(quotes.index, quotes.to_dict("records"), strict=True)
        }
        items = [
            ItemResult(index, quote=by_index.get(index), errors=failed.get(index, []))
            for index in range(len(requests))
        ]
        return ItemsResult(batch_id=batch_id, items=items)

    def quote_sheet(
        self,
        sheet: Sheet,
        *,
        source: str,
        user: str | None = None,
        explain: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> BatchResult:
        """Price a spreadsheet and log its quotes and errors as one batch."""
        result = quote_sheet(sheet, self.predictor, explain=explain, progress=progress)
        self.log_sheet(result, source=source, user=user)
        return result

    def log_sheet(self, result: BatchResult, *, source: str, user: str | None = None) -> str:
        """Log a priced sheet as one batch (all rows or none); returns the batch id. A face that
        must deliver a file first prices with `batch.quote_sheet`, writes, then logs."""
        quotes = result.quotes.copy()
        quotes["latency_ms"] = result.seconds * 1000 / max(len(quotes), 1)
        errors = pd.DataFrame(
            {
                "row": [e.row for e in result.errors],
                "column": [e.column for e in result.errors],
                "value": [e.value for e in result.errors],
                "reason": [e.message for e in result.errors],
            }
        )
        batch_id = uuid.uuid4().hex
        self.log.log_batch(quotes, errors, source=source, batch_id=batch_id, user=user)
        return batch_id

    def log_unreadable(
        self, reason: str, *, source: str, user: str | None = None, name: str | None = None
    ) -> None:
        """Log a whole file that could not be read, so that error rates see it too."""
        self.log.log_errors(
            pd.DataFrame(
                {
                    "row": [None],
                    "column": [None],
                    "value": [name],
                    "reason": [f"Filen kunde inte läsas: {reason}"],
                }
            ),
            source=source,
            user=user,
        )

    def explain(self, inputs: QuoteInput | Mapping[str, Any]) -> Explanation:
        """Take a price apart (nothing is logged: explain a quote that was, or use
        `quote_explained`)."""
        return self.predictor.explain(inputs)

    def quote_explained(
        self, request: QuoteInput | Mapping[str, Any], *, source: str, user: str | None = None
    ) -> tuple[Quote, Explanation]:
        """Price, log and explain one request: the explanation is of the logged quote (its
        price is the quote's price). An invalid request is logged as an error and re-raised."""
        quote = self.quote(request, source=source, user=user)
        return quote, self.predictor.explain(quote.inputs)


def _quote_from_record(row: dict[str, Any]) -> Quote:
    """A Quote from one row of `Predictor.quote_frame` (as a record of native values)."""
    warning = row["warning"]
    return Quote(
        predicted_price=int(row["predicted_price"]),
        confidence_interval_lower=int(row["confidence_interval_lower"]),
        confidence_interval_upper=int(row["confidence_interval_upper"]),
        model_version=str(row["model_version"]),
        feature_pipeline_version=str(row["feature_pipeline_version"]),
        prediction_id=str(row["prediction_id"]),
        inputs={key: row[key] for key in INPUT_COLUMNS},
        warning=None if warning is None or pd.isna(warning) else str(warning),
    )


def _jsonable(request: Any) -> Any:
    if isinstance(request, QuoteInput):
        return request.model_dump()
    try:
        value = dict(request) if isinstance(request, Mapping) else request
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(request)[:1000]
