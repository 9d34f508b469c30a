"""Avarn Pris core: from inputs to an honest, explained, logged price.

The faces (Streamlit app, CLI, REST API) use only the names exported here.
"""

from avarn_core.monitoring import (
    Health,
    accuracy,
    drift,
    error_rate,
    health,
    pairs,
    profile_inputs,
    volume,
)
from avarn_core.predlog import ActualsResult, PredictionLog, PredictionLogError
from avarn_core.schema import (
    COUNT_COLUMNS,
    INPUT_COLUMNS,
    INTERVAL_COLUMNS,
    QUOTE_KEYS,
    TARGET,
    QuoteInput,
    RowError,
    validate_table,
)
from avarn_core.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "ActualsResult",
    "COUNT_COLUMNS",
    "Health",
    "PredictionLog",
    "PredictionLogError",
    "INPUT_COLUMNS",
    "INTERVAL_COLUMNS",
    "QUOTE_KEYS",
    "TARGET",
    "QuoteInput",
    "RowError",
    "Settings",
    "accuracy",
    "drift",
    "error_rate",
    "get_settings",
    "health",
    "pairs",
    "profile_inputs",
    "validate_table",
    "volume",
]
