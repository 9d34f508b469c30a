import pandas as pd
import pytest
from pydantic import ValidationError

from avarn_core.schema import INPUT_COLUMNS, QuoteInput, validate_table


def table(**overrides):
    base = {
        "antal_sektioner": ["8", "3"],
        "antal_detektorer": ["25", "10"],
        "antal_larmdon": ["15", "4"],
        "dörrhållarmagneter": ["5", "0"],
        "ventilation": ["Ja", "Nej"],
        "stad": ["Stockholm", "Lund"],
        "testintervall": ["Månadsvis", "Årsvis"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_quote_input_accepts_the_original_request(request_example):
    q = QuoteInput.model_validate(request_example)
    assert q.interval == "månadsvis"


@pytest.mark.parametrize(
    "change",
    [
        {"antal_sektioner": 0},
        {"antal_detektorer": -1},
        {"antal_detektorer": 10_001},
        {"ventilation": 2},
        {"stad": ""},
        {"månadsvis": 0},  # no interval
        {"årsvis": 1},  # two intervals
        {"okänd": 1},
    ],
)
def test_quote_input_rejects(request_example, change):
    with pytest.raises(ValidationError):
        QuoteInput.model_validate({**request_example, **change})


def test_good_rows_pass_with_swedish_spellings():
    v = validate_table(
        table(
            antal_detektorer=["1 200", "10,0"],
            ventilation=["JA", "0"],
            testintervall=["kvartal", "ARSVIS"],
        )
    )
    assert v.errors == []
    assert v.inputs["antal_detektorer"].tolist() == [1200, 10]
    assert v.inputs["ventilation"].tolist() == [1, 0]
    assert v.inputs[["kvartalsvis", "årsvis"]].values.tolist() == [[1, 0], [0, 1]]
    assert list(v.inputs.columns) == INPUT_COLUMNS
    assert v.inputs.index.tolist() == [2, 3]


def test_each_bad_cell_names_row_column_and_value_in_swedish():
    v = validate_table(
        table(antal_sektioner=["8", "tre"], ventilation=["Kanske", "Nej"]),
        headers={"antal_sektioner": "Antal sektioner", "ventilation": "Ventilation"},
    )
    assert [str(e) for e in v.errors] == [
        "Rad 2, kolumn 'Ventilation': 'Kanske' ska vara Ja eller Nej",
        "Rad 3, kolumn 'Antal sektioner': 'tre' är inte ett heltal",
    ]
    assert v.inputs.empty


def test_bad_rows_do_not_stop_good_rows():
    v = validate_table(table(antal_larmdon=["2.5", "4"], stad=["Kiruna", ""]))
    assert {(e.row, e.column) for e in v.errors} == {(2, "antal_larmdon"), (3, "stad")}
    v = validate_table(table(antal_larmdon=["2.5", "4"]))
    assert v.inputs.index.tolist() == [3]


def test_bounds_and_missing_values():
    v = validate_table(table(antal_detektorer=["20000", ""]))
    messages = [e.message for e in v.errors]
    assert messages == ["20000 är större än rimliga 10 000", "värde saknas"]


def test_three_interval_columns_need_exactly_one():
    frame = table().drop(columns="testintervall")
    frame["årsvis"] = ["1", "1"]
    frame["kvartalsvis"] = ["0", "1"]
    frame["månadsvis"] = ["0", "0"]
    v = validate_table(frame)
    assert [(e.row, e.message) for e in v.errors] == [
        (3, "exakt ett testintervall ska vara markerat")
    ]


def test_unknown_interval_word():
    v = validate_table(table(testintervall=["Varannan vecka", "Årsvis"]))
    assert v.errors[0].row == 2 and "inget testintervall" in v.errors[0].message


def test_blank_ventilation_is_an_error_but_blank_interval_flags_are_no():
    v = validate_table(table(ventilation=["", "1,0"]))
    assert [(e.row, e.message) for e in v.errors] == [(2, "värde saknas (Ja eller Nej)")]
    frame = table().drop(columns="testintervall")
    frame["årsvis"], frame["kvartalsvis"], frame["månadsvis"] = ["", "1,0"], ["x", ""], ["", ""]
    assert validate_table(frame).errors == []


def test_control_characters_in_a_city_are_refused(request_example):
    v = validate_table(table(stad=["Lu\x00nd", "Lund"]))
    assert [(e.row, e.message) for e in v.errors] == [
        (2, "stadens namn innehåller otillåtna tecken")
    ]
    with pytest.raises(ValidationError):
        QuoteInput.model_validate({**request_example, "stad": "Stock\nholm"})
