"""Schemathesis over the API's own OpenAPI schema, against a real uvicorn on loopback.

Per endpoint at least 500 generated requests, valid (positive) and invalid (negative) by the
schema, each checked for: no 5xx, a documented status code, a documented content type, and a
body matching the documented response schema. /predict/batch also gets lists of valid quote
requests, so its pricing path is exercised and not only its per-item errors. The two GET
endpoints have no inputs: their one generated request is sent 500 times.

Bounded: no shrinking, no example database, ~1 minute in all on an idle machine.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from api_support import UvicornServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.fuzz

REQUESTS_PER_ENDPOINT = 500
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ENDPOINTS = [
    ("GET", "/"),
    ("GET", "/health"),
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("POST", "/explain"),
    ("POST", "/actuals"),
]


@pytest.fixture(scope="module")
def fuzz_server(models_dir, tmp_path_factory):
    env = {
        "AVARN_MODELS_DIR": models_dir,
        "AVARN_DB_URL": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'predictions.db'}",
    }
    with UvicornServer(env, log_dir=tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_generated_requests_get_no_5xx_and_documented_responses(
    api_schema, fuzz_server, method, path
):
    operation = api_schema[path][method]
    statuses: Counter[int] = Counter()

    def send(case) -> None:
        response = case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS, timeout=30)
        statuses[response.status_code] += 1

    if method == "GET":
        case = operation.Case()
        for _ in range(REQUESTS_PER_ENDPOINT):
            send(case)
    else:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
        if path == "/predict/batch":
            quote_bodies = api_schema["/predict"]["POST"].as_strategy(GenerationMode.POSITIVE)
            valid_lists = st.lists(quote_bodies.map(lambda c: c.body), max_size=20).map(
                lambda items: operation.Case(body=items, media_type="application/json")
            )
            cases = st.one_of(cases, valid_lists)

        @settings(
            max_examples=REQUESTS_PER_ENDPOINT,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def fuzz(case) -> None:
            send(case)

        fuzz()

    print(f"{method} {path}: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= REQUESTS_PER_ENDPOINT, statuses
    assert not any(code >= 500 for code in statuses), statuses
    if path in ("/predict", "/explain", "/predict/batch", "/actuals"):
        # Both outcomes were exercised: accepted requests and rejected ones.
        assert statuses[200] > 0 and statuses[422] > 0, statuses
