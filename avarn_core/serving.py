"""What a long-running face (the REST API) keeps open: the active model and the prediction log.

`Serving` never raises at start: a missing model or an unreachable log is reported by
`health()` and turns requests into `ServiceUnavailable` (HTTP 503), and both are retried
later, so a server started before the first model was trained, or before its database was up,
recovers by itself. What callers see says which part is unusable, never why: the cause (a
database host and user, a model folder) goes to this module's logger, once per change.

The model is the version marked active in the models folder. At most every `refresh_seconds`
a request looks at the ACTIVE marker (one small file read); when another process (the app,
`avarn activate`, another container sharing the folder) has activated a new version, the next
request loads it. A version that fails to load leaves the one in use serving and is reported
by `health()`.

>>> serving = Serving(get_settings())  # doctest: +SKIP
>>> serving.open()  # doctest: +SKIP
>>> with serving.guard():  # doctest: +SKIP
...     quote = serving.service().quote(request, source="api")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from avarn_core.predict import Predictor
from avarn_core.predlog import PredictionLog, PredictionLogError
from avarn_core.registry import (
    ModelIntegrityError,
    ModelNotFoundError,
    active_version,
    load_version,
)
from avarn_core.service import PricingService
from avarn_core.settings import Settings

MODEL_ERRORS = (ModelNotFoundError, ModelIntegrityError, OSError, ValueError, KeyError)
LOG_ERRORS = (SQLAlchemyError, PredictionLogError, OSError)
SEE_LOG = "orsaken står i serverns logg"
LOG_UNUSABLE = f"Prediktionsloggen går inte att använda ({SEE_LOG})"

logger = logging.getLogger(__name__)


class ServiceUnavailable(RuntimeError):
    """The model or the prediction log cannot be used right now (message in Swedish)."""


@dataclass(frozen=True)
class ComponentStatus:
    ok: bool
    version: str | None = None  # the model version in use
    error: str | None = None  # Swedish, safe to show anyone: the cause is in the server log

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "version": self.version, "error": self.error}


@dataclass(frozen=True)
class HealthReport:
    model: ComponentStatus
    log: ComponentStatus

    @property
    def ok(self) -> bool:
        return self.model.ok and self.log.ok


class Serving:
    """The active model (reloaded when ACTIVE changes) and the prediction log of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._log = PredictionLog(settings.db_url)
        self._service: PricingService | None = None
        self._model_error: str | None = "Ingen modell kan användas: modellen är inte laddad än"
        self._checked_at = float("-inf")
        self._reported: dict[str, str] = {}  # component → the cause last logged
        self._reported_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> HealthReport:
        """Load the active model and open the log (creating its tables); never raises."""
        self._refresh(force=True)
        return self.health()

    # -- use ---------------------------------------------------------------------------------

    def service(self) -> PricingService:
        """The pricing service over the current model; ServiceUnavailable without a model."""
        self._refresh()
        service = self._service
        if service is None:
            raise ServiceUnavailable(self._model_error or "Ingen modell kan användas")
        return service

    @property
    def predictor(self) -> Predictor:
        return self.service().predictor

    @property
    def log(self) -> PredictionLog:
        return self._log

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn a failing prediction log into ServiceUnavailable: a quote that cannot be
        logged is not given."""
        try:
            yield
        except LOG_ERRORS as exc:
            self._report("log", _short(exc))
            raise ServiceUnavailable(
                f"Prediktionsloggen går inte att använda, försök igen om en stund ({SEE_LOG})"
            ) from exc

    def health(self) -> HealthReport:
        """The model and log status now. The log is checked with `PredictionLog.ping` (two
        index lookups), cheap enough for a load balancer's probe every few seconds."""
        self._refresh()
        service = self._service
        if service is None:
            model = ComponentStatus(False, None, self._model_error)
        else:
            model = ComponentStatus(True, service.predictor.version, self._model_error)
        try:
            self._log.ping()
        except LOG_ERRORS as exc:
            self._report("log", _short(exc))
            log = ComponentStatus(False, error=LOG_UNUSABLE)
        else:
            self._report("log", None)
            log = ComponentStatus(True)
        return HealthReport(model, log)

    def model_info(self) -> dict[str, Any] | None:
        """The version in use and how it measured on held-out data; None without a model."""
        service = self._service
        if service is None:
            return None
        metadata = service.predictor.metadata
        holdout = metadata.get("holdout", {})
        return {
            "version": metadata.get("version"),
            "trained_at": metadata.get("trained_at"),
            "feature_pipeline_version": metadata.get("feature_pipeline_version"),
            "interval_level": metadata.get("level"),
            "holdout_mape": holdout.get("mape"),
            "holdout_coverage": holdout.get("coverage"),
            "training_rows": metadata.get("training_data", {}).get("rows", metadata.get("rows")),
        }

    # -- internals ---------------------------------------------------------------------------

    def _refresh(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._checked_at < self.refresh_seconds:
            return
        with self._lock:
            if not force and now - self._checked_at < self.refresh_seconds:
                return
            self._checked_at = now
            current = self._service.predictor.version if self._service else None
            try:
                wanted = active_version(self.settings.models_dir)
                if wanted is not None and wanted == current:
                    self._model_error = None
                    self._report("model", None)
                    return
                loaded = Predictor(load_version(self.settings.models_dir, wanted))
            except MODEL_ERRORS as exc:
                self._report("model", _short(exc))
                if current is None:
                    self._model_error = (
                        f"Ingen modell kan användas: den aktiva versionen kan inte laddas "
                        f"({SEE_LOG})"
                    )
                else:
                    self._model_error = (
                        f"{current} används; den aktiva versionen kan inte laddas ({SEE_LOG})"
                    )
                return
            self._service = PricingService(loaded, self._log)
            self._model_error = None
            self._report("model", None)
            logger.info("Serving model %s", loaded.version)

    def _report(self, component: str, cause: str | None) -> None:
        """Log why `component` ("model" or "log") cannot be used, once per change of cause,
        and when it can be used again; callers get only the generic message."""
        with self._reported_lock:
            if self._reported.get(component) == cause:
                return
            if cause is None:
                del self._reported[component]
            else:
                self._reported[component] = cause
        what = "The active model" if component == "model" else "The prediction log"
        if cause is None:
            logger.info("%s can be used again", what)
        else:
            logger.warning("%s cannot be used: %s", what, cause)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
