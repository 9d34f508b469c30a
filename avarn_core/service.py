"""The one way the faces price: a predictor and the prediction log together.

Every quote made through `PricingService` is logged, whichever face asked (app, CLI, API), and
so is every request or row that could not be priced. A table is logged in one transaction.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
            self.log.log_errors(
                pd.DataFrame(
                    {
                        "row": [None],
                        "column": [None],
                        "value": [None],
                        "reason": ["; ".join(validation_messages(exc))],
                        "inputs": [json.dumps(_jsonable(request), ensure_ascii=False)],
                    }
                ),
                source=source,
                user=user,
            )
            raise
        row = {
            **quote.inputs,
            **quote.to_dict(),
            "warning": quote.warning,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
        self.log.log_quotes(pd.DataFrame([row]), source=source, user=user)
        return quote

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
        return self.predictor.explain(inputs)

    def logged_inputs(self, prediction_id: str) -> dict[str, Any] | None:
        """The inputs of a logged quote, for explaining it later; None when the id is unknown."""
        row = self.log.quote(prediction_id)
        return None if row is None else {k: row[k] for k in INPUT_COLUMNS}


def _jsonable(request: QuoteInput | Mapping[str, Any]) -> Any:
    if isinstance(request, QuoteInput):
        return request.model_dump()
    try:
        json.dumps(dict(request))
        return dict(request)
    except (TypeError, ValueError):
        return str(request)[:1000]
