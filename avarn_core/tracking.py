"""Optional MLflow tracking of training runs (`pip install .[mlflow]`).

With MLFLOW_TRACKING_URI set, every model version that `train_file` saves (so `avarn train`
and the app's first-start training) is also logged to MLflow as one run:

- parameters: interval level, the chosen model spec (GAM and tree settings, blend weight),
  training rows, the feature pipeline version, the library versions, the training data's sha256;
- metrics: the holdout figures (MAPE, median APE, interval coverage and width, overall and per
  testing interval) and the training time;
- the model: an MLflow pyfunc (`avarn_core/mlflow_model.py`, logged as code, nothing pickled)
  whose artifact is the saved version folder, with a signature and an input example;
- the registered model `avarn-pris`, one registry version per Avarn version (tagged with it).

The models folder stays the source of truth: the app, the CLI and the API load versions from
it, never from MLflow. Without MLFLOW_TRACKING_URI nothing here runs and MLflow is never
imported (the imports are inside the functions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from avarn_core.registry import load_version
from avarn_core.schema import INPUT_COLUMNS

EXPERIMENT = "avarn-pris"
REGISTERED_MODEL = "avarn-pris"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    model_uri: str  # models:/<id> of the logged model
    registered_version: str | None  # the MLflow registry version


def example_inputs() -> pd.DataFrame:
    """The input example logged with the model: the original API's request example and two
    more contracts."""
    rows = [
        [8, 25, 15, 5, 1, "Stockholm", 0, 1, 0],
        [2, 6, 3, 0, 0, "Göteborg", 0, 0, 1],
        [20, 140, 60, 24, 1, "Malmö", 1, 0, 0],
    ]
    return pd.DataFrame(rows, columns=INPUT_COLUMNS)


def training_params(metadata: dict[str, Any]) -> dict[str, Any]:
    """MLflow parameters from a version's metadata (flat, short values)."""
    spec = metadata.get("spec", {})
    data = metadata.get("training_data", {})
    params: dict[str, Any] = {
        "avarn_version": metadata["version"],
        "interval_level": metadata.get("level"),
        "feature_pipeline_version": metadata.get("feature_pipeline_version"),
        "gam_weight": spec.get("gam_weight"),
        "training_rows": data.get("rows", metadata.get("rows")),
        "training_rows_rejected": data.get("rows_rejected"),
        "training_data_sha256": data.get("sha256"),
        "training_data_path": data.get("path"),
        "holdout_rows": metadata.get("holdout_rows"),
    }
    params.update({f"gam_{k}": v for k, v in spec.get("gam", {}).items()})
    params.update({f"trees_{k}": v for k, v in spec.get("trees", {}).items()})
    params.update({f"lib_{k}": v for k, v in metadata.get("libraries", {}).items()})
    return {k: v for k, v in params.items() if v is not None}


def holdout_metrics(metadata: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics: the holdout figures, overall and per testing interval."""
    holdout = metadata.get("holdout", {})
    metrics = {
        f"holdout_{name}": float(holdout[name])
        for name in ("mape", "median_ape", "coverage", "mean_relative_width")
        if name in holdout
    }
    for interval, figures in holdout.get("per_interval", {}).items():
        for name in ("mape", "coverage"):
            if name in figures:
                metrics[f"holdout_{interval}_{name}"] = float(figures[name])
    if "training_seconds" in metadata:
        metrics["training_seconds"] = float(metadata["training_seconds"])
    return metrics


def track_version(
    models_dir: Path,
    version: str,
    *,
    tracking_uri: str,
    experiment: str = EXPERIMENT,
    registered_model: str | None = REGISTERED_MODEL,
) -> TrackedRun:
    """Log a saved model version to MLflow as one run and register it."""
    import mlflow
    from mlflow.models import infer_signature

    from avarn_core.predict import Predictor

    loaded = load_version(Path(models_dir), version)
    metadata = loaded.metadata
    example = example_inputs()
    output = Predictor(loaded).quote_frame(example)[
        ["predicted_price", "confidence_interval_lower", "confidence_interval_upper"]
    ]

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"avarn {version}") as run:
        mlflow.set_tags(
            {
                "avarn_version": version,
                "training_data_sha256": metadata.get("training_data", {}).get("sha256", ""),
            }
        )
        mlflow.log_params(training_params(metadata))
        mlflow.log_metrics(holdout_metrics(metadata))
        mlflow.log_dict(metadata, "avarn_metadata.json")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"model_version": str(Path(models_dir) / version)},
            signature=infer_signature(example, output),
            input_example=example,
            registered_model_name=registered_model,
        )
    registered = getattr(info, "registered_model_version", None)
    if registered is not None and registered_model:
        mlflow.MlflowClient(tracking_uri).set_model_version_tag(
            registered_model, str(registered), "avarn_version", version
        )
    return TrackedRun(
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        registered_version=None if registered is None else str(registered),
    )


def track_if_configured(
    models_dir: Path,
    version: str,
    tracking_uri: str | None,
    progress: Any = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> TrackedRun | None:
    """Track `version` when a tracking URI is set. A tracking failure is reported, not raised:
    the version is already saved and usable. It goes to `warn` when given (a message that
    must stay in view), else to `progress`."""
    if not tracking_uri:
        return None
    try:
        tracked = track_version(models_dir, version, tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; training succeeded
        logger.warning("MLflow tracking of %s failed: %s", version, exc)
        message = f"MLflow-loggning misslyckades ({exc}); modellen {version} är sparad"
        if warn is not None:
            warn(message)
        elif progress is not None:
            progress(message, 1.0)
        return None
    if progress is not None:
        progress(f"Loggad i MLflow: körning {tracked.run_id}", 1.0)
    return tracked
