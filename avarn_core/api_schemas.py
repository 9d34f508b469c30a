"""The REST API's response bodies (and the /actuals request body) as pydantic models.

The quote request body is `QuoteInput` from `avarn_core.schema`: the original API's nine inputs.
The quote response has the original API's six keys and one added key, `warning`: null unless
the city was never seen in training or a count lies beyond the training data.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from avarn_core.schema import MAX_PRICE

PRICE = "SEK a year excluding VAT, whole kronor"


WARNING = (
    "Null, or (in Swedish) what the seller should check: the city was never seen in training "
    "(priced as an average city), and/or a count (sections, detectors, alarm devices, door "
    "magnets) is larger than any in the training data (the model extrapolates there and the "
    "interval says too little). Added to the original API's six keys."
)


class QuoteResponse(BaseModel):
    """One quote: the six keys of the original API, and `warning` (added, may be null)."""

    predicted_price: int = Field(description=f"The price, {PRICE}")
    confidence_interval_lower: int = Field(description="Lower bound of the price interval")
    confidence_interval_upper: int = Field(description="Upper bound of the price interval")
    model_version: str = Field(examples=["v0001"])
    feature_pipeline_version: str = Field(examples=["1"])
    prediction_id: str = Field(description="Id of the logged quote; use it in POST /actuals")
    warning: str | None = Field(default=None, description=WARNING)


class BatchItemResult(BaseModel):
    """One item of POST /predict/batch: the quote keys, or null keys and an error."""

    index: int = Field(ge=0, description="Position of the item in the request list, from 0")
    predicted_price: int | None = None
    confidence_interval_lower: int | None = None
    confidence_interval_upper: int | None = None
    model_version: str | None = None
    feature_pipeline_version: str | None = None
    prediction_id: str | None = None
    warning: str | None = Field(default=None, description=WARNING)
    error: str | None = Field(
        default=None, description="Why the item could not be priced ('field: message; ...')"
    )


class ExplainResponse(BaseModel):
    """A logged quote taken apart in whole kronor: base_price + Σ contributions =
    predicted_price. The quote keys are those POST /predict gives for the same request."""

    predicted_price: int = Field(description=f"The quoted price, {PRICE}")
    confidence_interval_lower: int = Field(description="Lower bound of the price interval")
    confidence_interval_upper: int = Field(description="Upper bound of the price interval")
    base_price: int = Field(description="The price of an average contract in the training data")
    contributions: dict[str, int] = Field(
        description="Kronor each input adds to (or takes from) the base price; the three "
        "interval flags are one input, 'testintervall'",
        examples=[
            {
                "antal_sektioner": 2100,
                "antal_detektorer": 900,
                "antal_larmdon": 400,
                "dörrhållarmagneter": 150,
                "ventilation": 800,
                "stad": 1200,
                "testintervall": 9000,
            }
        ],
    )
    drivers: list[str] = Field(description="The three biggest drivers in plain Swedish")
    model_version: str
    feature_pipeline_version: str
    prediction_id: str = Field(
        description="Id of the logged quote (every explained price is a logged quote, source "
        "'api'); use it in POST /actuals"
    )
    warning: str | None = Field(default=None, description=WARNING)


class ActualIn(BaseModel):
    """The agreed price of a quoted contract."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prediction_id: str = Field(min_length=1, max_length=64, description="From a quote")
    faktiskt_pris: float = Field(
        gt=0, le=MAX_PRICE, allow_inf_nan=False, description=f"The agreed price, {PRICE}"
    )
    datum: date | None = Field(default=None, description="Day agreed (default today)")


class ActualsResponse(BaseModel):
    recorded: int = Field(ge=0, description="Actual prices recorded")
    unknown_ids: list[str] = Field(description="Prediction ids not in the log (not recorded)")
    errors: list[str] = Field(description="Rows that could not be recorded, in Swedish")


class ComponentHealth(BaseModel):
    ok: bool
    version: str | None = None
    error: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    model: ComponentHealth
    log: ComponentHealth


class ModelInfo(BaseModel):
    version: str | None = None
    trained_at: str | None = None
    feature_pipeline_version: str | None = None
    interval_level: float | None = None
    holdout_mape: float | None = None
    holdout_coverage: float | None = None
    training_rows: int | None = None


class InfoResponse(BaseModel):
    name: str
    version: str
    model: ModelInfo | None = Field(description="The active model; null when none can be used")
    docs: str = "/docs"
    batch_max_items: int


class ErrorResponse(BaseModel):
    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors an endpoint can answer with."""
    text = {
        400: "The body could not be read at all (for example bytes that are not UTF-8)",
        401: "Missing or wrong X-API-Key (only when AVARN_API_KEY is set)",
        413: "Too many items (more than AVARN_BATCH_MAX_ITEMS) or too large a body",
        503: "The model or the prediction log cannot be used right now",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}
