"""One typed settings object, read from environment variables once.

Defaults serve a laptop: models in ./models, the prediction log in a SQLite file under ./logs.

>>> s = Settings.from_env({"AVARN_INTERVAL_LEVEL": "0.8"})
>>> s.interval_level
0.8
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    models_dir: Path = Path("models")
    db_url: str = "sqlite:///logs/predictions.db"
    training_data: Path = Path("data/training_data.csv")
    interval_level: float = 0.90
    api_key: str | None = None
    log_level: str = "INFO"
    mlflow_tracking_uri: str | None = None
    batch_max_items: int = 1000
    # Alert thresholds for `avarn monitor`.
    monitor_min_coverage: float = 0.85
    monitor_max_mape_ratio: float = 1.25
    monitor_psi_alert: float = 0.25
    monitor_max_error_rate: float = 0.05

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a number") from None
            if not low < value < high:
                raise SettingsError(f"{name}={raw!r} must lie between {low} and {high}")
            return value

        return cls(
            models_dir=Path(text("AVARN_MODELS_DIR") or cls.models_dir),
            db_url=text("AVARN_DB_URL") or cls.db_url,
            training_data=Path(text("AVARN_TRAINING_DATA") or cls.training_data),
            interval_level=number("AVARN_INTERVAL_LEVEL", cls.interval_level, 0.5, 1.0),
            api_key=text("AVARN_API_KEY"),
            log_level=(text("LOG_LEVEL") or cls.log_level).upper(),
            mlflow_tracking_uri=text("MLFLOW_TRACKING_URI"),
            batch_max_items=int(number("AVARN_BATCH_MAX_ITEMS", cls.batch_max_items, 0, 1e7)),
            monitor_min_coverage=number(
                "AVARN_MONITOR_MIN_COVERAGE", cls.monitor_min_coverage, 0.0, 1.0
            ),
            monitor_max_mape_ratio=number(
                "AVARN_MONITOR_MAX_MAPE_RATIO", cls.monitor_max_mape_ratio, 1.0, 100.0
            ),
            monitor_psi_alert=number("AVARN_MONITOR_PSI_ALERT", cls.monitor_psi_alert, 0.0, 100.0),
            monitor_max_error_rate=number(
                "AVARN_MONITOR_MAX_ERROR_RATE", cls.monitor_max_error_rate, 0.0, 1.0
            ),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
