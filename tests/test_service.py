import pytest
from pydantic import ValidationError

from avarn_core.io import read_table
from avarn_core.predlog import PredictionLog
from avarn_core.service import PricingService


@pytest.fixture()
def service(predictor, log_url):
    return PricingService(predictor, PredictionLog(log_url))


def test_every_quote_is_logged_with_its_source(service, request_example):
    quote = service.quote({**request_example, "stad": "goteborg"}, source="app-single", user="anna")
    row = service.log.quote(quote.prediction_id)
    assert row["source"] == "app-single" and row["user"] == "anna"
    assert row["stad"] == "Göteborg" and row["predicted_price"] == quote.predicted_price
    assert row["latency_ms"] > 0
    assert row["antal_detektorer"] == 25


def test_an_invalid_request_is_logged_as_an_error_and_raised(service, request_example):
    with pytest.raises(ValidationError):
        service.quote({**request_example, "antal_detektorer": -5}, source="api")
    errors = service.log.errors()
    assert len(errors) == 1 and "antal_detektorer" in errors["reason"].iloc[0]
    assert service.log.count() == 0


def test_an_explained_quote_is_logged_and_adds_up_to_its_price(service, request_example):
    quote, explanation = service.quote_explained(request_example, source="api")

    row = service.log.quote(quote.prediction_id)
    assert row["source"] == "api" and row["predicted_price"] == quote.predicted_price
    assert round(explanation.price) == quote.predicted_price
    assert explanation.base_price + sum(explanation.contributions.values()) == pytest.approx(
        explanation.price
    )
    with pytest.raises(ValidationError):
        service.quote_explained({**request_example, "ventilation": 3}, source="api")
    assert service.log.count() == 1 and len(service.log.errors()) == 1


def test_a_sheet_is_logged_as_one_batch_with_its_errors(service):
    sheet = read_table(
        "Antal sektioner;Antal detektorer;Antal larmdon;Dörrhållarmagneter;Ventilation;Stad;"
        "Testintervall\n8;25;15;5;Ja;Stockholm;Månadsvis\n3;x;4;0;Nej;Lund;Årsvis\n"
        "2;9;3;1;Nej;Kiruna;Kvartalsvis\n".encode()
    )
    result = service.quote_sheet(sheet, source="app-batch")
    quotes = service.log.quotes()
    assert len(quotes) == result.n_priced == 2
    assert quotes["batch_id"].nunique() == 1 and quotes["source"].eq("app-batch").all()
    assert quotes["warning"].notna().sum() == 1
    errors = service.log.errors()
    assert (
        errors["row"].tolist() == [3] and errors["batch_id"].iloc[0] == quotes["batch_id"].iloc[0]
    )


def test_a_list_of_requests_is_priced_item_by_item_and_logged_as_one_batch(
    service, request_example
):
    items = [
        request_example,
        {**request_example, "ventilation": 7},
        "not an object",
        {**request_example, "stad": "Ankeborg"},
    ]
    result = service.quote_items(items, source="api")

    assert [item.ok for item in result.items] == [True, False, False, True]
    assert result.n_priced == 2 and result.n_errors == 2
    assert result.items[1].errors[0].startswith("ventilation:")
    assert result.items[3].quote.warning is not None
    single = service.predictor.quote(request_example)
    assert result.items[0].quote.predicted_price == single.predicted_price
    assert result.items[0].quote.inputs == single.inputs
    quotes, errors = service.log.quotes(), service.log.errors()
    assert quotes["prediction_id"].tolist() == [
        result.items[0].quote.prediction_id,
        result.items[3].quote.prediction_id,
    ]
    assert set(quotes["batch_id"]) == set(errors["batch_id"]) == {result.batch_id}
    assert errors["row"].tolist() == [1, 2]


def test_a_list_with_only_bad_items_logs_only_errors(service, request_example):
    result = service.quote_items([{**request_example, "stad": ""}], source="api")

    assert result.n_priced == 0 and service.log.count() == 0
    assert len(service.log.errors()) == 1
