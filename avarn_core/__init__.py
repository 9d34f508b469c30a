"""Avarn Pris core: from inputs to an honest, explained, logged price.

The faces (Streamlit app, CLI, REST API) use only the names exported here.
"""

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
    "COUNT_COLUMNS",
    "INPUT_COLUMNS",
    "INTERVAL_COLUMNS",
    "QUOTE_KEYS",
    "TARGET",
    "QuoteInput",
    "RowError",
    "Settings",
    "get_settings",
    "validate_table",
]
