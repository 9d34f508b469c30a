"""The MLflow pyfunc of an Avarn model version, logged as code by `avarn_core.tracking`.

MLflow runs this file when the model is loaded (models from code: nothing is pickled). The
logged artifact `model_version` is a copy of the version folder; it is loaded with the same
version, library and checksum checks as the models folder. Needs avarn_core installed.

>>> model = mlflow.pyfunc.load_model("models:/avarn-pris/1")  # doctest: +SKIP
>>> model.predict(frame_with_the_nine_inputs)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from avarn_core.predict import Predictor
from avarn_core.registry import load_version
from avarn_core.schema import validate_table

OUTPUT_COLUMNS = ["predicted_price", "confidence_interval_lower", "confidence_interval_upper"]


class AvarnPricing(mlflow.pyfunc.PythonModel):
    """Prices a DataFrame of the nine inputs: price and interval per row."""

    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts["model_version"])
        self.predictor = Predictor(load_version(folder.parent, folder.name))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        validation = validate_table(pd.DataFrame(model_input).reset_index(drop=True))
        if validation.errors:
            raise ValueError("; ".join(str(e) for e in validation.errors[:20]))
        return self.predictor.quote_frame(validation.inputs)[OUTPUT_COLUMNS].reset_index(drop=True)


mlflow.models.set_model(AvarnPricing())
