"""The REST API in-process (FastAPI's TestClient, lifespan included): every endpoint, the
original request example, 422/413/401/503, and that every quote is logged with source "api"."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from avarn_core.api import configure_logging, create_app
from avarn_core.features import EXPLAINED_INPUTS
from avarn_core.schema import QUOTE_KEYS
from avarn_core.settings import Settings, SettingsError

KEY = "hemlig-nyckel-123"


@pytest.fixture
def settings(models_dir, sqlite_url) -> Settings:
    return Settings(models_dir=models_dir, db_url=sqlite_url)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def log_of(client: TestClient):
    return client.app.state.serving.log


def test_example_request_gives_the_six_keys_with_the_price_inside_its_interval(
    client, request_example
):
    response = client.post("/predict", json=request_example)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [*QUOTE_KEYS, "warning"]
    assert body["warning"] is None
    assert body["confidence_interval_lower"] <= body["predicted_price"]
    assert body["predicted_price"] <= body["confidence_interval_upper"]
    assert body["confidence_interval_lower"] < body["confidence_interval_upper"]
    assert body["model_version"] == "v0001"
    assert body["feature_pipeline_version"] == "1"


def test_every_quote_is_logged_with_source_api(client, request_example):
    ids = [client.post("/predict", json=request_example).json()["prediction_id"] for _ in range(3)]

    logged = log_of(client).quotes()
    assert logged["prediction_id"].tolist() == ids
    assert set(logged["source"]) == {"api"}
    assert logged["stad"].tolist() == ["Stockholm"] * 3
    assert logged["månadsvis"].tolist() == [1, 1, 1]


def test_unseen_city_is_priced_with_a_warning(client, request_example):
    body = client.post("/predict", json={**request_example, "stad": "ankeborg"}).json()

    assert body["predicted_price"] > 0
    assert "Ankeborg" in body["warning"]


def test_counts_beyond_the_training_data_are_priced_with_a_warning(client, request_example):
    body = client.post("/predict", json={**request_example, "antal_detektorer": 10_000}).json()
    documented = client.get("/openapi.json").json()["components"]["schemas"]["QuoteResponse"]

    assert body["predicted_price"] > 0
    assert "Antal detektorer" in body["warning"] and "fler än modellen har sett" in body["warning"]
    description = documented["properties"]["warning"]["description"]
    assert "never seen in training" in description and "larger than any" in description


def test_info_names_the_system_and_the_active_model(client):
    body = client.get("/").json()

    assert body["name"] == "Avarn Pris"
    assert body["version"] == "0.1.0"
    assert body["model"]["version"] == "v0001"
    assert 0 < body["model"]["holdout_mape"] < 1
    assert body["batch_max_items"] == 1000


def test_health_is_ok_when_model_and_log_work(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": {"ok": True, "version": "v0001", "error": None},
        "log": {"ok": True, "version": None, "error": None},
    }


def test_without_a_model_health_is_503_and_quotes_are_refused(
    tmp_path, sqlite_url, request_example, caplog
):
    settings = Settings(models_dir=tmp_path / "empty", db_url=sqlite_url)
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        quote = client.post("/predict", json=request_example)
        info = client.get("/")

    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["model"]["ok"] is False
    assert health.json()["log"]["ok"] is True
    assert quote.status_code == 503
    assert "Ingen modell" in quote.json()["detail"]
    assert info.status_code == 200 and info.json()["model"] is None
    assert str(tmp_path) not in health.text + quote.text  # the models folder: server log only
    assert str(tmp_path / "empty") in caplog.text


def test_health_asks_the_log_cheap_questions_only(client):
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement.lower())

    engine = log_of(client).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/health").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert statements and not any("count(" in s for s in statements)


@pytest.mark.parametrize("kind", ["sqlite-under-a-file", "postgres-nobody-listens"])
def test_with_an_unusable_log_health_is_503_and_no_quote_is_given(
    kind, tmp_path, models_dir, request_example, caplog
):
    if kind == "sqlite-under-a-file":
        (tmp_path / "a-file").write_text("not a folder")
        url = f"sqlite:///{tmp_path / 'a-file' / 'predictions.db'}"
    else:
        url = "postgresql+psycopg2://nobody@127.0.0.1:1/none?connect_timeout=2"
    with TestClient(create_app(Settings(models_dir=models_dir, db_url=url))) as client:
        health = client.get("/health")
        quote = client.post("/predict", json=request_example)
        batch = client.post("/predict/batch", json=[request_example])
        explain = client.post("/explain", json=request_example)

    assert health.status_code == 503
    assert health.json()["model"]["ok"] is True
    assert health.json()["log"]["ok"] is False
    assert health.json()["log"]["error"].startswith("Prediktionsloggen går inte att använda")
    assert quote.status_code == 503
    assert "Prediktionsloggen" in quote.json()["detail"]
    assert batch.status_code == 503
    assert explain.status_code == 503
    # Where the log is and who connects is for the server log, not for callers.
    secret = str(tmp_path) if kind == "sqlite-under-a-file" else "port 1"
    for response in (health, quote, batch, explain):
        assert secret not in response.text and "127.0.0.1" not in response.text
    assert secret in caplog.text


def test_a_quote_that_cannot_be_logged_is_not_given(client, request_example, monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(log_of(client), "log_quote", fail)
    response = client.post("/predict", json=request_example)

    assert response.status_code == 503
    assert "prediction_id" not in response.text


def test_a_model_trained_after_start_is_picked_up(
    tmp_path, models_dir, sqlite_url, request_example
):
    models = tmp_path / "models"
    models.mkdir()
    app = create_app(Settings(models_dir=models, db_url=sqlite_url), refresh_seconds=0)
    with TestClient(app) as client:
        assert client.post("/predict", json=request_example).status_code == 503
        shutil.copytree(models_dir / "v0001", models / "v0001")
        (models / "ACTIVE").write_text("v0001\n")
        response = client.post("/predict", json=request_example)
        health = client.get("/health")

    assert response.status_code == 200
    assert response.json()["model_version"] == "v0001"
    assert health.status_code == 200


def test_a_newly_activated_version_that_fails_to_load_leaves_the_old_one_serving(
    tmp_path, models_dir, sqlite_url, request_example, caplog
):
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    app = create_app(Settings(models_dir=models, db_url=sqlite_url), refresh_seconds=0)
    with TestClient(app) as client:
        assert client.post("/predict", json=request_example).json()["model_version"] == "v0001"
        shutil.copytree(models / "v0001", models / "v0002")
        metadata = json.loads((models / "v0002" / "metadata.json").read_text())
        (models / "v0002" / "metadata.json").write_text(
            json.dumps({**metadata, "version": "v0002"})
        )
        (models / "v0002" / "model.json").write_text("{}")  # no longer matches its sha256
        (models / "ACTIVE").write_text("v0002\n")
        quote = client.post("/predict", json=request_example)
        health = client.get("/health").json()

    assert quote.status_code == 200 and quote.json()["model_version"] == "v0001"
    assert health["model"]["ok"] is True and health["model"]["version"] == "v0001"
    assert "v0001 används" in health["model"]["error"]
    assert "sha256" not in health["model"]["error"]  # why: in the server log, once
    assert sum("sha256" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"antal_sektioner": 0}, "antal_sektioner"),
        ({"antal_detektorer": "många"}, "antal_detektorer"),
        ({"dörrhållarmagneter": 2001}, "dörrhållarmagneter"),
        ({"ventilation": 2}, "ventilation"),
        ({"stad": ""}, "stad"),
        ({"kundnamn": "ACME"}, "kundnamn"),
        ({"stad": None}, "stad"),
    ],
)
def test_a_bad_body_gets_422_naming_the_field(client, request_example, change, field):
    response = client.post("/predict", json={**request_example, **change})

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_missing_fields_and_two_intervals_get_422(client, request_example):
    missing = {k: v for k, v in request_example.items() if k != "antal_larmdon"}
    two = {**request_example, "årsvis": 1}

    assert client.post("/predict", json=missing).json()["detail"][0]["loc"] == [
        "body",
        "antal_larmdon",
    ]
    response = client.post("/predict", json=two)
    assert response.status_code == 422
    assert "årsvis, kvartalsvis, månadsvis" in response.json()["detail"][0]["msg"]
    not_json = client.post(
        "/predict", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422


def test_rejected_pricing_requests_are_logged_as_errors(client, request_example):
    client.post("/predict", json={**request_example, "antal_sektioner": 0})

    errors = log_of(client).errors()
    assert len(errors) == 1
    assert errors["source"].iloc[0] == "api"
    assert errors["reason"].iloc[0].startswith("antal_sektioner:")
    assert json.loads(errors["inputs"].iloc[0])["antal_sektioner"] == 0
    assert log_of(client).count() == 0


def test_batch_prices_good_items_and_names_the_field_of_bad_ones(client, request_example):
    items = [
        request_example,
        {**request_example, "antal_sektioner": -1},
        {**request_example, "stad": "Göteborg", "månadsvis": 0, "årsvis": 1},
    ]
    response = client.post("/predict/batch", json=items)

    assert response.status_code == 200
    results = response.json()
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["error"] is None and results[2]["error"] is None
    assert results[1]["predicted_price"] is None
    assert results[1]["error"].startswith("antal_sektioner:")
    single = client.post("/predict", json=request_example).json()
    assert results[0]["predicted_price"] == single["predicted_price"]
    for r in (results[0], results[2]):
        assert r["confidence_interval_lower"] <= r["predicted_price"]
        assert r["predicted_price"] <= r["confidence_interval_upper"]

    batch_id = response.headers["X-Batch-Id"]
    quotes = log_of(client).quotes()
    in_batch = quotes[quotes["batch_id"] == batch_id]
    assert in_batch["prediction_id"].tolist() == [
        results[0]["prediction_id"],
        results[2]["prediction_id"],
    ]
    assert set(in_batch["source"]) == {"api"}
    errors = log_of(client).errors()
    assert errors["batch_id"].tolist() == [batch_id]
    assert errors["row"].tolist() == [1]


def test_batch_items_that_are_not_objects_get_their_own_error(client, request_example):
    response = client.post("/predict/batch", json=[request_example, 5, None, "x", [1], {}])

    assert response.status_code == 200
    results = response.json()
    assert results[0]["error"] is None and results[0]["predicted_price"] > 0
    for result in results[1:5]:
        assert result["predicted_price"] is None
        assert result["error"] == "indata: posten ska vara ett objekt med de nio indata"
    assert results[5]["error"].startswith("antal_sektioner: ")
    errors = log_of(client).errors()
    assert errors["row"].tolist() == [1, 2, 3, 4, 5]
    assert errors["inputs"].tolist()[:4] == ["5", "null", '"x"', "[1]"]
    assert log_of(client).count() == 1


def test_a_batch_body_that_is_not_a_list_gets_422(client):
    response = client.post("/predict/batch", json={"antal_sektioner": 8})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_empty_batch_gives_an_empty_list(client):
    response = client.post("/predict/batch", json=[])

    assert response.status_code == 200
    assert response.json() == []


def test_batch_above_the_limit_gets_413(models_dir, sqlite_url, request_example):
    with TestClient(create_app(Settings(models_dir=models_dir, db_url=sqlite_url))) as client:
        at_limit = client.post("/predict/batch", json=[request_example] * 1000)
        above = client.post("/predict/batch", json=[request_example] * 1001)
        actuals = client.post("/actuals", json=[{"prediction_id": "x", "faktiskt_pris": 1}] * 1001)
        logged = client.app.state.serving.log.count()

    assert at_limit.status_code == 200 and len(at_limit.json()) == 1000
    assert above.status_code == 413
    assert "högst 1000" in above.json()["detail"]
    assert actuals.status_code == 413
    assert logged == 1000


def test_batch_limit_follows_the_setting(models_dir, sqlite_url, request_example):
    settings = Settings(models_dir=models_dir, db_url=sqlite_url, batch_max_items=3)
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict/batch", json=[request_example] * 3).status_code == 200
        assert client.post("/predict/batch", json=[request_example] * 4).status_code == 413
        assert client.get("/").json()["batch_max_items"] == 3


def _huge_batch(request_example: dict) -> bytes:
    """Three batch items, ~3 MB in all: far below the item limit (1,000) and far above the
    body limit (~2.1 MB), so only the body limit can refuse it; the endpoint itself would
    price nothing and answer 200 with an error per item (the city name is too long)."""
    item = {**request_example, "stad": "x" * 1_000_000}
    return json.dumps([item] * 3).encode()


def test_a_body_longer_than_the_limit_gets_the_middlewares_413(client, request_example):
    response = client.post(
        "/predict/batch",
        content=_huge_batch(request_example),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["detail"].startswith("För stor förfrågan: högst ")
    assert log_of(client).errors().empty


def test_a_chunked_body_longer_than_the_limit_gets_413_while_it_is_received(
    client, request_example
):
    body = _huge_batch(request_example)

    def chunks():  # a generator: sent with Transfer-Encoding: chunked, no Content-Length
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    response = client.post(
        "/predict/batch", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json()["detail"].startswith("För stor förfrågan: högst ")
    assert log_of(client).errors().empty


def test_explanation_adds_up_to_the_quoted_price(client, request_example):
    explained = client.post("/explain", json=request_example).json()
    quoted = client.post("/predict", json=request_example).json()

    assert list(explained["contributions"]) == EXPLAINED_INPUTS
    assert (
        explained["base_price"] + sum(explained["contributions"].values())
        == (explained["predicted_price"])
    )
    for key in QUOTE_KEYS:
        if key != "prediction_id":
            assert explained[key] == quoted[key], key
    assert len(explained["drivers"]) == 3
    assert all(s.endswith(".") and "kr" in s for s in explained["drivers"])


def test_an_explained_price_is_a_logged_quote(client, request_example):
    explained = client.post("/explain", json={**request_example, "stad": "ankeborg"}).json()
    rejected = client.post("/explain", json={**request_example, "ventilation": 5})

    logged = log_of(client).quote(explained["prediction_id"])
    assert logged is not None and logged["source"] == "api"
    assert logged["predicted_price"] == explained["predicted_price"]
    assert logged["confidence_interval_lower"] == explained["confidence_interval_lower"]
    assert logged["warning"] == explained["warning"] and "Ankeborg" in explained["warning"]
    assert log_of(client).count() == 1
    assert rejected.status_code == 422
    assert log_of(client).errors()["reason"].tolist() == [
        "ventilation: " + (rejected.json()["detail"][0]["msg"])
    ]
    recorded = client.post(
        "/actuals", json=[{"prediction_id": explained["prediction_id"], "faktiskt_pris": 40000}]
    )
    assert recorded.json()["recorded"] == 1


def test_actuals_are_recorded_and_unknown_ids_reported(client, request_example):
    pid = client.post("/predict", json=request_example).json()["prediction_id"]
    response = client.post(
        "/actuals",
        json=[
            {"prediction_id": pid, "faktiskt_pris": 41000, "datum": "2025-03-01"},
            {"prediction_id": "okänd", "faktiskt_pris": 1000},
        ],
    )

    assert response.status_code == 200
    assert response.json() == {"recorded": 1, "unknown_ids": ["okänd"], "errors": []}
    logged = log_of(client).quotes()
    assert logged.loc[logged["prediction_id"] == pid, "faktiskt_pris"].tolist() == [41000.0]


@pytest.mark.parametrize(
    "row",
    [
        {"prediction_id": "a", "faktiskt_pris": -5},
        {"prediction_id": "a", "faktiskt_pris": 0},
        {"prediction_id": "", "faktiskt_pris": 10},
        {"prediction_id": "a", "faktiskt_pris": 10, "datum": "igår"},
        {"prediction_id": "a"},
    ],
)
def test_bad_actuals_get_422(client, row):
    assert client.post("/actuals", json=[row]).status_code == 422


def test_api_key_is_required_everywhere_but_health_when_set(
    models_dir, sqlite_url, request_example
):
    settings = Settings(models_dir=models_dir, db_url=sqlite_url, api_key=KEY)
    with TestClient(create_app(settings)) as client:
        right = {"X-API-Key": KEY}
        wrong = {"X-API-Key": KEY + "x"}
        calls = [
            ("get", "/", None),
            ("post", "/predict", request_example),
            ("post", "/predict/batch", [request_example]),
            ("post", "/explain", request_example),
            ("post", "/actuals", [{"prediction_id": "x", "faktiskt_pris": 1}]),
        ]
        for method, path, body in calls:
            kwargs = {} if body is None else {"json": body}
            assert getattr(client, method)(path, **kwargs).status_code == 401, path
            assert getattr(client, method)(path, headers=wrong, **kwargs).status_code == 401
            assert getattr(client, method)(path, headers=right, **kwargs).status_code == 200
        no_key_bad_body = client.post("/predict", json={"x": 1})
        # Bodies that fail while FastAPI reads them, before the key is checked.
        unreadable = []
        for path in ("/predict", "/predict/batch", "/explain", "/actuals"):
            for headers in ({}, wrong):
                for content in (b"{inte json", b"", b"[1, 2"):
                    unreadable.append(
                        client.post(
                            path,
                            content=content,
                            headers={**headers, "Content-Type": "application/json"},
                        )
                    )
        assert client.get("/health").status_code == 200
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
        logged = client.app.state.serving.log.count()
        errors = len(client.app.state.serving.log.errors())

    assert no_key_bad_body.status_code == 401
    assert "API-nyckel" in no_key_bad_body.json()["detail"]
    assert [r.status_code for r in unreadable] == [401] * len(unreadable)
    assert all("API-nyckel" in r.json()["detail"] for r in unreadable)
    assert logged == 3  # /predict, /predict/batch and /explain with the right key
    assert errors == 0  # requests without the key are not logged, whatever their body
    assert "APIKeyHeader" in schema["components"]["securitySchemes"]


def test_with_the_key_a_body_that_is_not_json_gets_422_and_is_logged_as_such(
    models_dir, sqlite_url
):
    settings = Settings(models_dir=models_dir, db_url=sqlite_url, api_key=KEY)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict",
            content=b'{"antal_sektioner": 8,,}',
            headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        )
        errors = log_of(client).errors()

    assert response.status_code == 422
    assert errors["reason"].tolist() == [
        "indata: ogiltig JSON (fel vid tecken 23)"
    ]  # the second comma


@pytest.mark.parametrize("key", ["nyckel-åäö", "nyckel-€", "två\nrader", " mellanslag"])
def test_a_key_no_client_could_send_is_refused_when_the_app_is_built(models_dir, sqlite_url, key):
    with pytest.raises(SettingsError, match="AVARN_API_KEY may hold only printable ASCII"):
        create_app(Settings(models_dir=models_dir, db_url=sqlite_url, api_key=key))


def test_openapi_documents_every_endpoint(client):
    schema = client.get("/openapi.json").json()

    assert client.get("/docs").status_code == 200
    assert set(schema["paths"]) == {
        "/",
        "/health",
        "/predict",
        "/predict/batch",
        "/explain",
        "/actuals",
    }
    predict = schema["paths"]["/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "QuoteInput"
    )
    assert {"200", "422", "413", "503"} <= set(predict["responses"])
    batch = schema["paths"]["/predict/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["type"] == "array"
    assert batch["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/QuoteInput"
    }
    assert "securitySchemes" not in schema.get("components", {})  # no key configured


def test_logging_gets_one_handler_only_when_none_is_configured(monkeypatch):
    package = logging.getLogger("avarn_core")
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "level", package.level)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as under uvicorn: nothing on the root logger

    configure_logging("DEBUG")
    configure_logging("INFO")  # a second app in the same process

    assert package.level == logging.INFO
    assert len(package.handlers) == 1
    assert isinstance(package.handlers[0], logging.StreamHandler)

    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])  # e.g. uvicorn --log-config
    configure_logging("WARNING")
    assert package.handlers == []  # the configured handler prints our lines


def test_building_the_app_opens_nothing(tmp_path):
    """No work at import or app creation: no log file, no model read until the server starts."""
    db = tmp_path / "logs" / "predictions.db"
    create_app(Settings(models_dir=tmp_path / "no-models", db_url=f"sqlite:///{db}"))
    assert not db.parent.exists()

    script = (
        "import avarn_core.api as api, os; "
        "assert api._default_app is None; "
        "app = api.app; "
        "assert api._default_app is app; "
        "assert app.state.settings.db_url.endswith('x.db'); "
        "assert os.listdir('.') == []"
    )
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {"AVARN_DB_URL": f"sqlite:///{tmp_path}/x.db", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert not Path(tmp_path / "x.db").exists()
