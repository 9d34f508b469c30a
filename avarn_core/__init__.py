"""Avarn Pris core: from inputs to an honest, explained, logged price.

The faces (Streamlit app, CLI, REST API) use only the names exported here.
"""

from avarn_core.batch import BatchResult, error_frame, quote_sheet
from avarn_core.explain import (
    INPUT_NAMES,
    driver_sentences,
    format_sek,
    global_importance,
    rounded,
    waterfall_frame,
)
from avarn_core.features import EXPLAINED_INPUTS, FEATURE_PIPELINE_VERSION
from avarn_core.io import ReadError, Sheet, read_table, to_csv_bytes, to_xlsx_bytes
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
from avarn_core.predict import Explanation, Predictor, Quote
from avarn_core.predlog import ActualsResult, PredictionLog, PredictionLogError
from avarn_core.registry import (
    ModelFormatError,
    ModelIntegrityError,
    ModelNotFoundError,
    activate,
    active_version,
    list_versions,
    load_version,
)
from avarn_core.schema import (
    COUNT_COLUMNS,
    INPUT_COLUMNS,
    INTERVAL_COLUMNS,
    INTERVAL_LABELS,
    LABELS,
    QUOTE_KEYS,
    TARGET,
    UPPER_BOUNDS,
    QuoteInput,
    RowError,
    validate_table,
)
from avarn_core.service import PricingService
from avarn_core.settings import Settings, get_settings
from avarn_core.train import ensure_active_model, train_file

__version__ = "0.1.0"

__all__ = [
    "COUNT_COLUMNS",
    "EXPLAINED_INPUTS",
    "FEATURE_PIPELINE_VERSION",
    "INPUT_COLUMNS",
    "INPUT_NAMES",
    "INTERVAL_COLUMNS",
    "INTERVAL_LABELS",
    "LABELS",
    "QUOTE_KEYS",
    "TARGET",
    "UPPER_BOUNDS",
    "ActualsResult",
    "BatchResult",
    "Explanation",
    "Health",
    "ModelFormatError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "PredictionLog",
    "PredictionLogError",
    "Predictor",
    "PricingService",
    "Quote",
    "QuoteInput",
    "ReadError",
    "RowError",
    "Settings",
    "Sheet",
    "accuracy",
    "activate",
    "active_version",
    "drift",
    "driver_sentences",
    "ensure_active_model",
    "error_frame",
    "error_rate",
    "format_sek",
    "get_settings",
    "global_importance",
    "health",
    "list_versions",
    "load_version",
    "pairs",
    "profile_inputs",
    "quote_sheet",
    "read_table",
    "rounded",
    "to_csv_bytes",
    "to_xlsx_bytes",
    "train_file",
    "validate_table",
    "volume",
    "waterfall_frame",
]
