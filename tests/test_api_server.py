"""The REST API over a real `uvicorn avarn_core.api:app` on a loopback port, configured only
through environment variables, as in the Docker image."""

from __future__ import annotations

import socket

import httpx
import pytest
from api_support import UvicornServer

from avarn_core.api import BODY_BYTES_BASE, BODY_BYTES_PER_ITEM
from avarn_core.predlog import PredictionLog
from avarn_core.schema import QUOTE_KEYS

KEY = "nyckel-for-test-42"


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('server') / 'predictions.db'}"


@pytest.fixture(scope="module")
def server(models_dir, server_log, tmp_path_factory):
    env = {"AVARN_MODELS_DIR": models_dir, "AVARN_DB_URL": server_log, "LOG_LEVEL": "INFO"}
    with UvicornServer(env, log_dir=tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(models_dir, tmp_path_factory):
    env = {
        "AVARN_MODELS_DIR": models_dir,
        "AVARN_DB_URL": f"sqlite:///{tmp_path_factory.mktemp('keyed') / 'predictions.db'}",
        "AVARN_API_KEY": KEY,
        "AVARN_BATCH_MAX_ITEMS": "10",
        "LOG_LEVEL": "WARNING",
    }
    with UvicornServer(env, log_dir=tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


def test_every_endpoint_over_http(server, server_log, request_example):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = PredictionLog(server_log).count()
        info = http.get("/")
        health = http.get("/health")
        quote = http.post("/predict", json=request_example)
        batch = http.post("/predict/batch", json=[request_example, {"stad": "Lund"}])
        explain = http.post("/explain", json=request_example)
        actuals = http.post(
            "/actuals",
            json=[{"prediction_id": quote.json()["prediction_id"], "faktiskt_pris": 39000}],
        )
        docs = http.get("/docs")

    assert info.status_code == 200 and info.json()["model"]["version"] == "v0001"
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert quote.status_code == 200
    body = quote.json()
    assert set(QUOTE_KEYS) <= set(body)
    assert body["confidence_interval_lower"] <= body["predicted_price"]
    assert body["predicted_price"] <= body["confidence_interval_upper"]
    assert batch.status_code == 200
    assert [r["error"] is None for r in batch.json()] == [True, False]
    assert batch.json()[0]["predicted_price"] == body["predicted_price"]
    assert explain.status_code == 200
    e = explain.json()
    assert e["base_price"] + sum(e["contributions"].values()) == body["predicted_price"]
    assert actuals.json() == {"recorded": 1, "unknown_ids": [], "errors": []}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()

    log = PredictionLog(server_log)
    assert log.count() == before + 3  # /predict, the batch's good item and /explain
    assert log.quote(e["prediction_id"])["predicted_price"] == e["predicted_price"]
    assert log.quote(body["prediction_id"])["source"] == "api"
    assert log.quote(body["prediction_id"])["faktiskt_pris"] == 39000


def test_bad_bodies_get_422_over_http(server, request_example):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        field = http.post("/predict", json={**request_example, "antal_detektorer": -1})
        not_json = http.post(
            "/predict", content=b"nej", headers={"Content-Type": "application/json"}
        )
        batch = http.post("/predict/batch", json={"inte": "en lista"})
        explain = http.post("/explain", json={})
        actuals = http.post("/actuals", json=[{"prediction_id": "a", "faktiskt_pris": "gratis"}])

    assert field.status_code == 422
    assert field.json()["detail"][0]["loc"] == ["body", "antal_detektorer"]
    assert not_json.status_code == 422
    assert batch.status_code == 422
    assert explain.status_code == 422
    assert actuals.status_code == 422
    assert actuals.json()["detail"][0]["loc"] == ["body", 0, "faktiskt_pris"]


def test_batch_limit_gets_413_over_http(server, request_example):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.post("/predict/batch", json=[request_example] * 1001)

    assert response.status_code == 413


def test_api_key_over_http(keyed_server, request_example):
    with httpx.Client(base_url=keyed_server.url, timeout=30) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/").status_code == 401
        assert http.post("/predict", json=request_example).status_code == 401
        wrong = {"X-API-Key": "fel"}
        assert http.post("/predict", json=request_example, headers=wrong).status_code == 401
        right = {"X-API-Key": KEY}
        assert http.get("/", headers=right).status_code == 200
        assert http.post("/predict", json=request_example, headers=right).status_code == 200
        batch = http.post("/predict/batch", json=[request_example] * 11, headers=right)
        assert batch.status_code == 413  # AVARN_BATCH_MAX_ITEMS=10 from the environment


def test_a_chunked_body_over_the_limit_gets_413_before_it_has_all_been_sent(keyed_server):
    """Without Content-Length (Transfer-Encoding: chunked) the limit is enforced while the body
    arrives: the server answers 413 although the body never ends (and no key was sent)."""
    limit = BODY_BYTES_BASE + 10 * BODY_BYTES_PER_ITEM  # AVARN_BATCH_MAX_ITEMS=10
    chunk = b"[" + b" " * 16_383
    head = (
        f"POST /predict/batch HTTP/1.1\r\nHost: 127.0.0.1:{keyed_server.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", keyed_server.port), timeout=10) as sock:
        sock.sendall(head)
        for _ in range(limit // len(chunk) + 2):  # past the limit, and no final 0-chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65_536)
            if not data:
                break
            answer += data

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:500]
    assert f"För stor förfrågan: högst {limit} byte" in rest.decode()


def test_uvicorn_refuses_to_start_with_a_key_no_client_could_send(models_dir, tmp_path):
    env = {
        "AVARN_MODELS_DIR": models_dir,
        "AVARN_DB_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
        "AVARN_API_KEY": "hemlig-nyckel-åäö",
    }
    with (
        pytest.raises(RuntimeError, match="uvicorn exited") as failed,
        UvicornServer(env, log_dir=tmp_path),
    ):
        pass

    assert "AVARN_API_KEY may hold only printable ASCII" in str(failed.value)


def test_log_level_decides_which_of_the_apis_own_lines_uvicorn_prints(server, keyed_server):
    """uvicorn runs with --log-level warning (its own lines); LOG_LEVEL is for ours."""
    started = "Avarn Pris API 0.1.0 started: model v0001"

    assert server.output().count(started) == 1  # LOG_LEVEL=INFO: printed, once
    assert "avarn_core.db: Migrating the prediction log to version 2" in server.output()
    assert "avarn_core.serving: Serving model v0001" in server.output()
    assert started not in keyed_server.output()  # LOG_LEVEL=WARNING
    assert "Serving model" not in keyed_server.output()
