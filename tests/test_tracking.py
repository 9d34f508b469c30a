"""Optional MLflow tracking: `avarn train` with MLFLOW_TRACKING_URI logs and registers the run
(tested on a local file store in a tmp folder); without it MLflow is never imported.

MLflow is in requirements-dev.txt, so CI runs these; where it is missing they skip, except
under CI, where that is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from avarn_core.cli import main
from avarn_core.predict import Predictor
from avarn_core.registry import load_version
from avarn_core.schema import INPUT_COLUMNS
from avarn_core.settings import get_settings
from avarn_core.synthetic import generate_quotes

ROWS = 400


def _mlflow():
    try:
        import mlflow
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("mlflow is not installed (it is in requirements-dev.txt)")
        pytest.skip("mlflow is not installed: pip install .[mlflow]")
    return mlflow


@pytest.fixture(scope="module")
def training_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "training_data.csv"
    generate_quotes(ROWS, seed=5).to_csv(path, index=False)
    return path


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    """A local MLflow file store in tmp (MLflow 3 wants the file store opted into)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    get_settings.cache_clear()
    return uri


def test_avarn_train_logs_the_run_and_registers_the_version(
    training_csv, file_store, tmp_path, capsys
):
    mlflow = _mlflow()
    models = tmp_path / "models"

    assert main(["train", "--data", str(training_csv), "--models-dir", str(models)]) == 0
    assert "Loggad i MLflow" in capsys.readouterr().err

    metadata = load_version(models, "v0001").metadata
    client = mlflow.MlflowClient(file_store)
    experiment = client.get_experiment_by_name("avarn-pris")
    (run,) = client.search_runs([experiment.experiment_id])
    params, metrics = run.data.params, run.data.metrics
    assert params["avarn_version"] == "v0001"
    assert params["training_data_sha256"] == metadata["training_data"]["sha256"]
    assert len(params["training_data_sha256"]) == 64
    assert int(params["training_rows"]) == ROWS
    assert float(params["interval_level"]) == metadata["level"]
    assert float(params["gam_weight"]) == metadata["spec"]["gam_weight"]
    assert metrics["holdout_mape"] == pytest.approx(metadata["holdout"]["mape"])
    assert metrics["holdout_coverage"] == pytest.approx(metadata["holdout"]["coverage"])
    assert "holdout_månadsvis_coverage" in metrics
    assert run.data.tags["training_data_sha256"] == metadata["training_data"]["sha256"]
    logged_metadata = json.loads(
        (tmp_path / "mlruns")
        .joinpath(experiment.experiment_id, run.info.run_id, "artifacts", "avarn_metadata.json")
        .read_text()
    )
    assert logged_metadata["version"] == "v0001"

    (registered,) = client.search_model_versions("name='avarn-pris'")
    assert str(registered.version) == "1"
    assert registered.tags["avarn_version"] == "v0001"
    assert registered.run_id == run.info.run_id

    model = mlflow.pyfunc.load_model("models:/avarn-pris/1")
    signature = model.metadata.signature
    assert signature.inputs.input_names() == INPUT_COLUMNS
    assert signature.outputs.input_names() == [
        "predicted_price",
        "confidence_interval_lower",
        "confidence_interval_upper",
    ]
    example = model.input_example
    assert list(example.columns) == INPUT_COLUMNS
    prices = model.predict(example)
    expected = Predictor.load(models).quote_frame(example)
    assert prices["predicted_price"].tolist() == expected["predicted_price"].tolist()
    assert (prices["confidence_interval_lower"] <= prices["predicted_price"]).all()


def test_a_tracking_failure_keeps_the_saved_version(training_csv, tmp_path, monkeypatch, capsys):
    _mlflow()
    # MLflow 3 refuses a file store that was not opted into: tracking fails at once.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    get_settings.cache_clear()
    models = tmp_path / "models"

    assert main(["train", "--data", str(training_csv), "--models-dir", str(models)]) == 0

    assert "MLflow-loggning misslyckades" in capsys.readouterr().err
    assert Predictor.load(models).version == "v0001"


def test_without_a_tracking_uri_mlflow_is_never_imported(training_csv, tmp_path):
    script = (
        "import sys; from pathlib import Path; "
        "import avarn_core, avarn_core.tracking, avarn_core.api; "
        "from avarn_core.train import train_file; "
        f"v = train_file(Path({str(training_csv)!r}), Path({str(tmp_path / 'models')!r})); "
        "assert v == 'v0001', v; "
        "loaded = [m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.')]; "
        "assert not loaded, loaded"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
