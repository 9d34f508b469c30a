"""The Streamlit app's shared resources: one predictor and one prediction log per process.

`st.cache_resource` shares them between all sessions (each session runs in its own thread):
the predictor is read-only after loading and keyed by model version and the checksum of its
manifest, so a model activated with `avarn train` is picked up by the next rerun and a replaced
models folder is never served from an old entry; the log opens a fresh connection per
operation (see `avarn_core.db`), so sharing it across threads is safe.

Only the app imports this module (it needs Streamlit); `avarn_core/__init__` does not.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from avarn_core.predict import Predictor
from avarn_core.predlog import PredictionLog
from avarn_core.registry import (
    ModelIntegrityError,
    ModelNotFoundError,
    active_version,
    version_fingerprint,
)
from avarn_core.service import PricingService
from avarn_core.settings import Settings, get_settings
from avarn_core.train import RetrainingPlan, ensure_active_model, train_file
from avarn_core.train import retraining_plan as plan_retraining

logger = logging.getLogger("avarn_core.app")

_ENTRY_RAN = "_avarn_entry_ran"
_NOTES = "_avarn_training_notes"
_CALLBACK_FAILED = "_avarn_callback_failed"
ERROR_MESSAGE = "Något gick fel. Felet är loggat; försök igen och kontakta support om det upprepas."
# Serialises first-start training between sessions of this process; a second process is
# safe too (a model version is renamed into place atomically), it just trains its own.
_training_lock = threading.Lock()


def mark_entry_ran() -> None:
    """Called by streamlit_app.py on every run, before it runs a page."""
    st.session_state[_ENTRY_RAN] = True


def require_entry(page: str) -> None:
    """Called first by every page. Streamlit runs a file in pages/ on its own (its legacy
    pages-folder mode) when the very first request after a server start is a deep link such as
    /batch; then the entry script, which trains the first model and calls st.navigation, has
    not run. Go through it, keeping the page the user asked for."""
    if not st.session_state.get(_ENTRY_RAN):
        st.switch_page("streamlit_app.py", query_params={"sida": page})
    _show_callback_failure()


def settings() -> Settings:
    return get_settings()


def needs_training() -> bool:
    """True on a fresh machine: no model has been activated yet."""
    return active_version(settings().models_dir) is None


def ensure_model(
    progress: Callable[[str, float], None], warn: Callable[[str], None] | None = None
) -> str:
    """The active model version; on a fresh machine, train the default one first. `warn` gets
    what the user should still read after training (an MLflow tracking failure)."""
    current = settings()
    version = active_version(current.models_dir)
    if version is not None:
        return version
    with _training_lock:
        return ensure_active_model(
            current.models_dir, current.training_data, progress=progress, warn=warn
        )


def retraining_plan() -> RetrainingPlan:
    """What retraining the unreadable active model would train on (see `train.retraining_plan`)."""
    current = settings()
    return plan_retraining(current.models_dir, current.training_data, current.interval_level)


def retrain(
    plan: RetrainingPlan,
    progress: Callable[[str, float], None],
    warn: Callable[[str], None] | None = None,
) -> str:
    """Train a new version per `plan` and activate it; the old version stays on disk. When
    another session has already replaced `plan.version`, nothing is trained again."""
    current = settings()
    with _training_lock:
        version = active_version(current.models_dir)
        if version != plan.version or plan.data is None:
            return version or ""
        return train_file(
            plan.data, current.models_dir, level=plan.level, progress=progress, warn=warn
        )


def keep_notes(notes: list[str]) -> None:
    """Remember messages from training for this session's sidebar (they outlive the bar)."""
    st.session_state[_NOTES] = [*st.session_state.get(_NOTES, []), *notes]


def notes() -> list[str]:
    return list(st.session_state.get(_NOTES, []))


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A widget callback that cannot break the page. Streamlit runs callbacks before the script,
    outside the entry script's try/except: a failure here is logged with its traceback and the
    page shows the usual Swedish message (see `require_entry`)."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception:
            logger.exception("Callback %s failed", callback.__name__)
            st.session_state[_CALLBACK_FAILED] = True

    return run


def _show_callback_failure() -> None:
    """Called first by every page (`require_entry`): say so if a callback failed this run."""
    if st.session_state.pop(_CALLBACK_FAILED, False):
        st.error(ERROR_MESSAGE)


@st.cache_resource(show_spinner="Laddar prismodellen …", max_entries=8)
def _load_predictor(models_dir: str, version: str, fingerprint: str) -> Predictor:
    # `fingerprint` (the manifest's checksum) only keys the cache: a version name can be
    # reused when a models folder is replaced, a manifest cannot.
    return Predictor.load(Path(models_dir), version)


@st.cache_resource(show_spinner=False)
def _open_log(db_url: str) -> PredictionLog:
    log = PredictionLog(db_url)
    log.check()  # creates the schema on first use and fails early if the log is unusable
    return log


def predictor(version: str | None = None) -> Predictor:
    """The predictor of `version` (default: the active one), loaded once per process."""
    current = settings()
    version = version or active_version(current.models_dir)
    if version is None:
        raise RuntimeError("no active model: call ensure_model first")
    fingerprint = version_fingerprint(current.models_dir, version)
    return _load_predictor(str(current.models_dir), version, fingerprint)


def predictor_of(version: str) -> Predictor | None:
    """The predictor of `version`, or None when that version can no longer be loaded (removed,
    or saved in a format this version of Avarn Pris cannot read)."""
    try:
        return predictor(version)
    except (ModelNotFoundError, ModelIntegrityError) as exc:
        logger.warning("Model version %s cannot be loaded: %s", version, exc)
        return None


def prediction_log() -> PredictionLog:
    return _open_log(settings().db_url)


def service() -> PricingService:
    """The pricing service over the active model and the prediction log."""
    return PricingService(predictor(), prediction_log())


@st.cache_data(show_spinner="Läser prediktionsloggen …", max_entries=8, ttl=60)
def _read_log(db_url: str, since: datetime | None, count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    # `count` only keys the cache: a new quote invalidates it; errors and actual prices
    # recorded elsewhere show within a minute (actual prices recorded here: at once).
    log = _open_log(db_url)
    return log.quotes(since=since), log.errors(since=since)


def log_frames(days: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Logged quotes (with actual prices) and errors of the last `days` days (None: all);
    re-read when the log has grown."""
    log = prediction_log()
    since = None
    if days is not None:  # from midnight UTC, so the cache key holds for a day
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=days)
    return _read_log(log.url, since, log.count())


def clear_log_cache() -> None:
    """Forget cached log frames (after recording actual prices, which do not change count)."""
    _read_log.clear()


def metadata() -> dict[str, Any]:
    return predictor().metadata


@st.cache_data(show_spinner=False, max_entries=4)
def _training_profile(
    version: str, fingerprint: str, _metadata: dict[str, Any]
) -> dict[str, Any] | None:
    # Keyed by version and fingerprint; `_metadata` (not hashed) is that same version's.
    from avarn_core.performance import training_profile

    return training_profile(_metadata)


def training_profile(version: str | None = None) -> dict[str, Any] | None:
    """The training-data profile of `version` (default: the active model) for drift,
    computed once per saved version."""
    loaded = predictor(version)
    fingerprint = version_fingerprint(settings().models_dir, loaded.version)
    return _training_profile(loaded.version, fingerprint, loaded.metadata)
