"""Several instances on one PostgreSQL log: two uvicorn processes and an app-like writer.

4 clients each send 200 quotes to each of the two API processes (4 × 2 × 200 = 1,600), while
this process prices like the app does (PricingService, source app-single). Every quote must
be in the log exactly once: 1,600 rows with source "api", the ids the clients got back.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_support import UvicornServer

from avarn_core.predict import Predictor
from avarn_core.predlog import PredictionLog
from avarn_core.service import PricingService

pytestmark = pytest.mark.postgres

CLIENTS = 4
QUOTES_PER_CLIENT_AND_INSTANCE = 200
APP_QUOTES = 50


def test_two_api_processes_and_the_app_share_one_postgresql_log(
    pg_url, models_dir, tmp_path, request_example
):
    env = {"AVARN_MODELS_DIR": models_dir, "AVARN_DB_URL": pg_url}
    with (
        UvicornServer(env, log_dir=tmp_path) as first,
        UvicornServer(env, log_dir=tmp_path) as second,
    ):
        urls = [first.url, second.url]
        ids: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            with httpx.Client(timeout=30) as http:
                for i in range(QUOTES_PER_CLIENT_AND_INSTANCE * len(urls)):
                    body = {**request_example, "antal_detektorer": number * 1000 + i}
                    response = http.post(urls[(number + i) % 2] + "/predict", json=body)
                    with lock:
                        if response.status_code == 200:
                            ids.append(response.json()["prediction_id"])
                        else:
                            failures.append(f"{response.status_code} {response.text[:200]}")

        def app() -> list[str]:
            service = PricingService(Predictor.load(models_dir), PredictionLog(pg_url))
            return [
                service.quote(request_example, source="app-single").prediction_id
                for _ in range(APP_QUOTES)
            ]

        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            app_ids = pool.submit(app)
            for future in [pool.submit(client, n) for n in range(CLIENTS)]:
                future.result()
            app_ids = app_ids.result()
        server_output = first.output() + second.output()

    assert failures == [], server_output
    expected = CLIENTS * len(urls) * QUOTES_PER_CLIENT_AND_INSTANCE
    assert expected == 1600
    assert len(ids) == len(set(ids)) == expected

    logged = PredictionLog(pg_url).quotes()
    api = logged[logged["source"] == "api"]
    assert len(api) == expected
    assert set(api["prediction_id"]) == set(ids)
    assert sorted(logged.loc[logged["source"] == "app-single", "prediction_id"]) == sorted(app_ids)
    assert len(logged) == expected + APP_QUOTES
    # Every request's own inputs were logged with its quote (1,600 distinct detector counts).
    assert api["antal_detektorer"].nunique() == expected
