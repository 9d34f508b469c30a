"""The app's pure helpers: form inputs, what-if, the customer summary, Swedish formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from avarn_core import QuoteInput, read_table, to_csv_bytes, validate_table, waterfall_frame
from avarn_core.explain import describe_input
from avarn_core.offer import (
    DEFAULT_INPUTS,
    WHAT_IF_INPUTS,
    city_choices,
    comparison_note,
    covered_items,
    current_value,
    customer_summary,
    form_inputs,
    quote_from_log,
    template_frame,
    what_if,
    with_change,
)
from avarn_core.presentation import (
    delta_text,
    format_local_time,
    format_percent,
    importance_from_metadata,
    md_escape,
    model_facts,
    rows_text,
    validation_text,
    waterfall_table,
)

NBSP = "\u00a0"


def test_defaults_are_a_valid_request():
    assert QuoteInput.model_validate(DEFAULT_INPUTS).interval == "månadsvis"


def test_form_inputs_make_the_model_inputs():
    counts = {
        "antal_sektioner": 3,
        "antal_detektorer": 9,
        "antal_larmdon": 2,
        "dörrhållarmagneter": 0,
    }
    inputs = form_inputs(counts, ventilation=False, city="  Lund ", interval="kvartalsvis")
    assert inputs == {
        **counts,
        "ventilation": 0,
        "stad": "Lund",
        "kvartalsvis": 1,
        "månadsvis": 0,
        "årsvis": 0,
    }
    assert form_inputs(counts, ventilation=True, city=None, interval="årsvis")["stad"] == ""
    with pytest.raises(ValueError):
        form_inputs(counts, ventilation=True, city="Lund", interval="veckovis")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("antal_detektorer", 40, {"antal_detektorer": 40}),
        ("ventilation", 0, {"ventilation": 0}),
        ("stad", " Umeå ", {"stad": "Umeå"}),
        ("testintervall", "årsvis", {"årsvis": 1, "månadsvis": 0, "kvartalsvis": 0}),
    ],
)
def test_with_change_changes_exactly_one_input(name, value, expected):
    changed = with_change(DEFAULT_INPUTS, name, value)
    assert changed == {**DEFAULT_INPUTS, **expected}
    assert current_value(changed, name) == (value.strip() if name == "stad" else value)


def test_what_if_prices_the_change_and_gives_the_difference(predictor, request_example):
    quoted = predictor.quote(request_example)
    more = what_if(predictor, quoted, "antal_detektorer", 200)
    direct = predictor.quote({**request_example, "antal_detektorer": 200})
    assert more.quote.predicted_price == direct.predicted_price
    assert more.difference == direct.predicted_price - quoted.predicted_price
    assert more.difference >= 0  # more detectors never lower the price
    same = what_if(predictor, quoted, "stad", quoted.inputs["stad"])
    assert same.difference == 0
    assert {n for n in WHAT_IF_INPUTS} >= {"stad", "testintervall", "ventilation"}


def test_what_if_rejects_an_invalid_value(predictor, request_example):
    quoted = predictor.quote(request_example)
    with pytest.raises(ValidationError):
        what_if(predictor, quoted, "antal_sektioner", 0)


def test_quote_from_log_round_trips_a_logged_row(predictor, request_example):
    quote = predictor.quote(request_example)
    row = {**quote.inputs, **quote.to_dict(), "warning": float("nan")}
    for key in ("predicted_price", "confidence_interval_lower", "confidence_interval_upper"):
        row[key] = float(row[key])  # the log stores prices as floats
    assert quote_from_log(row) == quote


def test_customer_summary_has_price_coverage_and_drivers_but_no_jargon(predictor, request_example):
    quote = predictor.quote(request_example)
    explanation = predictor.explain(quote.inputs)
    text = customer_summary(quote, explanation, today=date(2025, 3, 1))
    price = f"{quote.predicted_price:,}".replace(",", NBSP) + f"{NBSP}kr"
    assert f"Pris: {price} per år, exklusive moms" in text
    assert "Datum: 2025-03-01" in text and quote.prediction_id in text
    assert "8 sektioner" in text and "25 detektorer" in text and "12 gånger per år" in text
    assert "Provning av ventilationsstyrning vid larm" in text
    assert "jämfört med ett typiskt avtal" in text
    for jargon in ("SHAP", "modell", "intervall", "confidence", "prediction"):
        assert jargon.lower() not in text.lower().replace("provningsintervall", "")


def test_template_is_read_back_by_the_batch_reader_with_its_extra_columns():
    sheet = read_table(to_csv_bytes(template_frame()))
    assert len(sheet.frame) == 2
    assert not validate_table(sheet.canonical(), sheet.columns, sheet.rows).errors
    assert {"Kund", "Adress"} <= set(sheet.frame.columns)
    assert set(sheet.columns) >= {"antal_sektioner", "stad", "testintervall"}


def test_md_escape_makes_user_text_inert():
    nasty = "**fet** [länk](javascript:alert(1)) <b>x</b> :red[röd] # rubrik\n- lista"
    escaped = md_escape(nasty)
    for token in ("**", "[", "](", "<b>", ":red[", "# "):
        assert token not in escaped.replace("\\" + token[0], "")
    assert "\n" not in escaped
    assert md_escape("Göteborg") == "Göteborg"


def test_swedish_numbers_and_times():
    assert format_percent(0.0812) == f"8,1{NBSP}%"
    assert format_percent(0.9, 0) == f"90{NBSP}%"
    assert format_percent(None) == format_percent(float("nan")) == "–"
    assert delta_text(1200) == f"+1{NBSP}200{NBSP}kr"
    assert delta_text(-1200) == f"-1{NBSP}200{NBSP}kr"  # ASCII minus: st.metric's arrow
    assert delta_text(0) == f"0{NBSP}kr"
    assert (rows_text(1), rows_text(10_000)) == ("1 rad", f"10{NBSP}000 rader")
    assert format_local_time("2025-07-01T10:00:00+00:00") == "2025-07-01 12:00"  # CEST
    assert format_local_time(datetime(2025, 1, 1, 10, tzinfo=UTC)) == "2025-01-01 11:00"


def test_model_facts_for_the_sidebar():
    facts = dict(
        model_facts(
            {
                "version": "v0003",
                "trained_at": "2025-02-01T08:00:00+00:00",
                "level": 0.9,
                "holdout": {"mape": 0.0826, "coverage": 0.912},
                "training_data": {"rows": 3000},
            }
        )
    )
    assert facts["Modellversion"] == "v0003"
    assert facts["Tränad"] == "2025-02-01 09:00"
    assert facts["Medelfel på testdata"] == f"8,3{NBSP}%"
    assert facts[f"Prisintervallet (90{NBSP}%) träffade"] == f"91,2{NBSP}%"
    assert facts["Träningsdata"] == f"3{NBSP}000 offerter"
    assert dict(model_facts({"version": "v1"}))["Tränad"] == "okänd tid"


def test_validation_text_is_swedish():
    with pytest.raises(ValidationError) as caught:
        QuoteInput.model_validate({**DEFAULT_INPUTS, "stad": "x" * 61, "antal_sektioner": 0})
    lines = validation_text(caught.value.errors())
    assert "Antal sektioner ska vara minst 1." in lines
    assert "Stad får vara högst 60 tecken." in lines
    with pytest.raises(ValidationError) as caught:
        QuoteInput.model_validate({**DEFAULT_INPUTS, "årsvis": 1})
    assert validation_text(caught.value.errors()) == ["Välj exakt ett testintervall."]


def test_importance_and_waterfall_tables(predictor, request_example):
    frame = importance_from_metadata(
        {"global_importance": {"stad": 900.0, "testintervall": 5000.5, "ventilation": 1200.0}}
    )
    assert list(frame["input"]) == ["Testintervall", "Ventilation", "Stad"]
    assert list(frame["mean_abs_sek"]) == [5000.5, 1200.0, 900.0]
    assert importance_from_metadata({}).empty
    steps = waterfall_frame(predictor.explain(request_example))
    table = waterfall_table(steps)
    assert table["Steg"].iloc[0] == "Typiskt avtal" and table["Steg"].iloc[-1] == "Pris"
    assert all(b[0] in "+\u22120" for b in table["Belopp"].iloc[1:-1])
    assert table["Belopp"].iloc[-1][0].isdigit()


def test_customer_summary_counts_in_singular_and_with_thousands_spacing(predictor):
    inputs = {
        **DEFAULT_INPUTS,
        "antal_sektioner": 1,
        "antal_detektorer": 1,
        "antal_larmdon": 1,
        "dörrhållarmagneter": 1,
    }
    quote = predictor.quote(inputs)
    text = customer_summary(quote, predictor.explain(quote.inputs), today=date(2025, 3, 1))
    assert "Brandlarm med 1 sektion\n" in text
    assert "  - 1 detektor\n" in text and "  - 1 dörrhållarmagnet\n" in text
    assert "  - 1 larmdon (sirener och blixtljus)\n" in text
    assert "sektioner" not in text and "detektorer" not in text

    many = {**inputs, "antal_detektorer": 9999}
    assert f"9{NBSP}999 detektorer" in covered_items(many)
    assert describe_input("antal_detektorer", many) == f"9{NBSP}999 detektorer"


def test_city_choices_keep_a_chosen_unseen_city():
    assert city_choices(["Lund", "Malmö"], "Lund") == ["Lund", "Malmö"]
    assert city_choices(["Lund"], "Ankeborg", None, "", "Ankeborg") == ["Lund", "Ankeborg"]


def test_comparison_note_says_which_model_priced_the_what_if():
    assert comparison_note("v0001", "v0001", "v0001") is None
    changed = comparison_note("v0001", "v0001", "v0002")
    assert "gjordes med modellversion v0001" in changed and "prissätts den med v0002" in changed
    gone = comparison_note("v0001", "v0002", "v0002")
    assert "v0001, som gjorde offerten, kan inte längre laddas" in gone
