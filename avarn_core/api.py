"""The REST API: the original service's contract as a thin face on avarn_core.

    uvicorn avarn_core.api:app --host 0.0.0.0 --port 8000

Endpoints: GET / (system info), GET /health (open, 200 or 503), POST /predict, POST
/predict/batch, POST /explain, POST /actuals. OpenAPI docs at /docs. Every quote and every
request that could not be priced is logged with source "api". With AVARN_API_KEY set, every
endpoint but /health (and the docs) needs the header `X-API-Key`.

Importing this module does no work: `app` is built on first access (which is what uvicorn
does), from the settings in the environment; the model and the log are opened when the server
starts (the lifespan). Tests build their own with `create_app(settings)`.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations, which use
# values local to create_app (the batch limit).

import hmac
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from avarn_core import __version__
from avarn_core.api_schemas import (
    ActualIn,
    ActualsResponse,
    BatchItemResult,
    ExplainResponse,
    HealthResponse,
    InfoResponse,
    QuoteResponse,
    error_responses,
)
from avarn_core.explain import driver_sentences, rounded
from avarn_core.schema import EXAMPLE_REQUEST, QuoteInput
from avarn_core.serving import ServiceUnavailable, Serving
from avarn_core.settings import Settings, SettingsError, get_settings

SOURCE = "api"
NAME = "Avarn Pris"
API_KEY_HEADER = "X-API-Key"
# Bytes a request body may have per allowed batch item (a request is ~250 bytes), plus slack.
BODY_BYTES_PER_ITEM = 2048
BODY_BYTES_BASE = 65_536
PRICED_PATHS = ("/predict", "/predict/batch", "/explain")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as `avarn` writes them
UNAUTHORIZED = f"API-nyckel saknas eller är fel (sidhuvudet {API_KEY_HEADER})"

logger = logging.getLogger(__name__)


QuoteRequest = Annotated[QuoteInput, Body(examples=[EXAMPLE_REQUEST])]


def create_app(settings: Settings | None = None, *, refresh_seconds: float = 2.0) -> FastAPI:
    """The API for `settings` (default: from the environment). Opens nothing until started."""
    settings = settings or get_settings()
    _check_api_key(settings.api_key)
    serving = Serving(settings, refresh_seconds=refresh_seconds)
    max_items = settings.batch_max_items

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        report = await run_in_threadpool(serving.open)
        if not report.ok:
            logger.warning(
                "Starting without a usable %s: %s",
                "model" if not report.model.ok else "log",
                report.model.error or report.log.error,
            )
        else:
            logger.info(
                "%s API %s started: model %s, batch limit %d, API key %s",
                NAME,
                __version__,
                report.model.version,
                max_items,
                "required" if settings.api_key else "not required",
            )
        yield

    app = FastAPI(
        title=f"{NAME} API",
        version=__version__,
        description=(
            "Prices annual fire-alarm testing contracts (brandlarmsprovning) with a price "
            "interval, explains prices in kronor and records agreed prices. Every quote is "
            f"logged. `POST /predict/batch` and `POST /actuals` take at most {max_items} items."
        ),
        lifespan=lifespan,
    )
    app.state.serving = serving
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=BODY_BYTES_BASE + max_items * BODY_BYTES_PER_ITEM)

    key_header = APIKeyHeader(
        name=API_KEY_HEADER, auto_error=False, description="Needed when AVARN_API_KEY is set"
    )

    def key_ok(key: str | None) -> bool:
        expected = settings.api_key
        if not expected:
            return True
        return key is not None and hmac.compare_digest(key.encode(), expected.encode())

    def require_key(key: str | None = Security(key_header)) -> None:
        if not key_ok(key):
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "APIKey"})

    guarded = [Security(require_key)] if settings.api_key else []

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI reads the body before it runs require_key, so a body that is not JSON fails
        # here for callers without the key too: they get the 401 they would have got, and
        # nothing they send is logged.
        if not key_ok(request.headers.get(API_KEY_HEADER)):
            return JSONResponse(
                {"detail": UNAUTHORIZED}, status_code=401, headers={"WWW-Authenticate": "APIKey"}
            )
        # A pricing request that could not be priced is logged too (then FastAPI's 422).
        if request.url.path in PRICED_PATHS:
            reasons = rejection_reasons(exc.errors())
            try:
                await run_in_threadpool(_log_rejected, serving, exc.body, reasons)
            except Exception:  # noqa: BLE001 - the client still gets its 422
                logger.exception("Could not log a rejected request")
        return await request_validation_exception_handler(request, exc)

    @app.get(
        "/",
        response_model=InfoResponse,
        tags=["system"],
        dependencies=guarded,
        responses=error_responses(401),
    )
    def info() -> InfoResponse:
        """The system: name, version, the active model and the batch limit."""
        with suppress(ServiceUnavailable):
            serving.service()  # picks up a newly activated model
        return InfoResponse(
            name=NAME,
            version=__version__,
            model=serving.model_info(),
            batch_max_items=max_items,
        )

    @app.get(
        "/health",
        response_model=HealthResponse,
        tags=["system"],
        responses={503: {"model": HealthResponse, "description": "Model or log not usable"}},
    )
    def health(response: Response) -> HealthResponse:
        """200 when the model and the prediction log can be used, else 503. Needs no key."""
        report = serving.health()
        if not report.ok:
            response.status_code = 503
        return HealthResponse(
            status="ok" if report.ok else "unavailable",
            model=report.model.to_dict(),
            log=report.log.to_dict(),
        )

    @app.post(
        "/predict",
        response_model=QuoteResponse,
        tags=["pricing"],
        dependencies=guarded,
        responses=error_responses(400, 401, 413, 503),
    )
    def predict(request: QuoteRequest) -> QuoteResponse:
        """Price one contract: the price, its interval and the id of the logged quote."""
        with serving.guard():
            quote = serving.service().quote(request, source=SOURCE)
        return QuoteResponse(**quote.to_dict(), warning=quote.warning)

    @app.post(
        "/predict/batch",
        response_model=list[BatchItemResult],
        tags=["pricing"],
        dependencies=guarded,
        responses=error_responses(400, 401, 413, 503),
        # The body is taken as a list of any JSON values, so that one bad item (even one that
        # is not an object) gets its own error instead of failing the request; what an item
        # should be is documented here.
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"items": {"$ref": "#/components/schemas/QuoteInput"}}
                    }
                }
            }
        },
    )
    def predict_batch(
        response: Response,
        requests: Annotated[
            list[Any],
            Body(
                description=(
                    "A list of requests, each with the nine inputs of POST /predict. Each item is "
                    "validated on its own: an item that is not such a request (a bad value, a "
                    "missing input, not even an object) gets an `error`, the others are priced. "
                    f"At most {max_items} items (413 above); a body that is not a list gets 422."
                ),
                examples=[[EXAMPLE_REQUEST, {**EXAMPLE_REQUEST, "antal_sektioner": 0}]],
            ),
        ],
    ) -> list[BatchItemResult]:
        """Price a list of contracts; results in the same order, one per item. All quotes and
        errors are logged as one batch, whose id is in the `X-Batch-Id` header."""
        _check_size(len(requests), max_items)
        with serving.guard():
            result = serving.service().quote_items(requests, source=SOURCE)
        response.headers["X-Batch-Id"] = result.batch_id
        return [
            BatchItemResult(index=item.index, **item.quote.to_dict(), warning=item.quote.warning)
            if item.quote is not None
            else BatchItemResult(index=item.index, error="; ".join(item.errors))
            for item in result.items
        ]

    @app.post(
        "/explain",
        response_model=ExplainResponse,
        tags=["pricing"],
        dependencies=guarded,
        responses=error_responses(400, 401, 413, 503),
    )
    def explain(request: QuoteRequest) -> ExplainResponse:
        """Price the contract like POST /predict, log the quote (source "api") and take its
        price apart: kronor per input that add up to the price, the three biggest drivers in
        Swedish, and the quote's keys, its `prediction_id` included."""
        with serving.guard():
            quote, explanation = serving.service().quote_explained(request, source=SOURCE)
        base, contributions, price = rounded(explanation)
        if price != quote.predicted_price:  # one model call makes both; never expected
            raise RuntimeError(f"explained price {price} != quoted {quote.predicted_price}")
        return ExplainResponse(
            **quote.to_dict(),
            base_price=base,
            contributions=contributions,
            drivers=driver_sentences(explanation),
            warning=quote.warning,
        )

    @app.post(
        "/actuals",
        response_model=ActualsResponse,
        tags=["actual prices"],
        dependencies=guarded,
        responses=error_responses(400, 401, 413, 503),
    )
    def actuals(
        rows: Annotated[
            list[ActualIn],
            Body(
                description=f"Agreed prices for logged quotes; at most {max_items} rows",
                examples=[
                    [{"prediction_id": "9c1f…", "faktiskt_pris": 41000, "datum": "2025-03-01"}]
                ],
            ),
        ],
    ) -> ActualsResponse:
        """Record agreed prices for quoted contracts; ids not in the log are reported, not
        recorded. A later price for the same id replaces the current one (history is kept)."""
        _check_size(len(rows), max_items)
        with serving.guard():
            result = serving.log.record_actuals(_actuals_frame(rows))
        return ActualsResponse(
            recorded=result.recorded, unknown_ids=result.unknown_ids, errors=result.errors
        )

    return app


def configure_logging(level: str) -> None:
    """LOG_LEVEL for the avarn_core loggers, and somewhere for their lines to go.

    uvicorn configures only its own loggers (its --log-level is for those), so our INFO lines
    would reach no handler. When nothing up the logger tree has one (no --log-config that
    configures the root logger, no earlier call), a stderr handler is attached to the
    avarn_core logger; otherwise the configured handlers print them, once.
    """
    package = logging.getLogger("avarn_core")
    package.setLevel(level)
    if not package.hasHandlers():
        handler = logging.StreamHandler()  # stderr, where uvicorn writes its own lines
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        package.addHandler(handler)


def _check_api_key(key: str | None) -> None:
    """Refuse a key no client could send: HTTP header values are bytes, which Starlette reads
    as latin-1, so a key with characters outside printable ASCII (å, ä, ö, €, a line break)
    would never match what a client sends; surrounding spaces are dropped on the way."""
    if key and not (key.isascii() and key.isprintable() and key == key.strip()):
        raise SettingsError(
            "AVARN_API_KEY may hold only printable ASCII characters (letters a-z, A-Z, digits, "
            "punctuation) and no spaces at its ends; a key with other characters (such as "
            "å, ä, ö) could never match the X-API-Key header a client sends"
        )


def _check_size(n: int, max_items: int) -> None:
    if n > max_items:
        raise HTTPException(413, f"För många poster: högst {max_items} per anrop, fick {n}")


def rejection_reasons(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """FastAPI's validation errors as the 'field: message' lines logged for a rejected request.

    >>> rejection_reasons([{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON ..."}])
    ['indata: ogiltig JSON (fel vid tecken 1)']
    """
    reasons = []
    for error in errors:
        where = tuple(error.get("loc", ()))[1:]  # without "body"
        if error.get("type") == "json_invalid":
            # The location is a character position in the body, not a field or an item.
            position = where[0] if where and isinstance(where[0], int) else None
            at = "" if position is None else f" (fel vid tecken {position + 1})"
            reasons.append(f"indata: ogiltig JSON{at}")
        else:
            field = ".".join(str(part) for part in where) or "indata"
            reasons.append(f"{field}: {error.get('msg')}")
    return reasons


def _log_rejected(serving: Serving, body: Any, reasons: list[str]) -> None:
    with serving.guard():
        serving.service().log_rejected(body, reasons, source=SOURCE)


def _actuals_frame(rows: list[ActualIn]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "prediction_id": [r.prediction_id for r in rows],
            "faktiskt_pris": [r.faktiskt_pris for r in rows],
            "datum": [r.datum for r in rows],
        },
        columns=["prediction_id", "faktiskt_pris", "datum"],
    )


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """A request body above the limit (raised while the body is being received)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"För stor förfrågan: högst {max_bytes} byte")


class BodyLimit:
    """Answer 413 to a request body above `max_bytes`, whether or not it says its length.

    A Content-Length above the limit is refused before anything is read. Every body is also
    counted while it is received (a chunked body has no Content-Length): the chunk that
    passes the limit raises BodyTooLarge, which FastAPI turns into the 413 answer, before
    the body is parsed or the endpoint runs.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse({"detail": BodyTooLarge(self.max_bytes).detail}, status_code=413)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await too_large(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            # Read outside FastAPI's exception handling (normally it answers itself).
            if started:
                raise
            await too_large(scope, receive, send)


_default_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    # `uvicorn avarn_core.api:app` looks the attribute up: the app is built then, not at import.
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = create_app()
        return _default_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["configure_logging", "create_app"]
