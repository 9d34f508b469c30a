import pandas as pd

from avarn_core.batch import error_frame, quote_sheet
from avarn_core.io import read_table
from avarn_core.schema import QUOTE_KEYS

LINES = [
    "Kund;Adress;Antal sektioner;Antal detektorer;Antal larmdon;Dörrhållarmagneter;"
    "Ventilation;Stad;Testintervall",
    "Brf Eken;Storgatan 1;8;25;15;5;Ja;Stockholm;Månadsvis",
    "Skolan;Storgatan 2;3;tolv;4;0;Nej;Lund;Årsvis",
    "Hallen;Storgatan 3;4;30;6;0;Nej;KIRUNA;Kvartalsvis",
    "Kontoret;Storgatan 4;5;30;6;0;Kanske;goteborg;Varannan vecka",
    "Lagret;Storgatan 5;2;9;3;1;nej;malmo;kvartal",
]


def sheet():
    return read_table("\r\n".join(LINES).encode("cp1252"))


def test_good_rows_are_priced_and_bad_rows_say_why(predictor):
    result = quote_sheet(sheet(), predictor)
    assert (result.n_rows, result.n_priced, result.n_warnings, result.n_error_rows) == (5, 3, 1, 2)
    table = result.table
    assert table.index.tolist() == [2, 3, 4, 5, 6]
    assert table["Kund"].tolist() == ["Brf Eken", "Skolan", "Hallen", "Kontoret", "Lagret"]
    assert list(table.columns[:9]) == LINES[0].split(";")
    assert list(table.columns[9:]) == [*QUOTE_KEYS, "warning", "error"]
    assert table.loc[3, "error"] == "Rad 3, kolumn 'Antal detektorer': 'tolv' är inte ett heltal"
    assert "'Kanske' ska vara Ja eller Nej" in table.loc[5, "error"]
    assert "'Varannan vecka' är inget testintervall" in table.loc[5, "error"]
    assert pd.isna(table.loc[3, "predicted_price"]) and pd.isna(table.loc[5, "prediction_id"])
    assert "Kiruna" in table.loc[4, "warning"]
    priced = table.loc[[2, 4, 6]]
    assert (priced["confidence_interval_lower"] <= priced["predicted_price"]).all()
    assert (priced["predicted_price"] <= priced["confidence_interval_upper"]).all()
    assert result.quotes["stad"].tolist() == ["Stockholm", "Kiruna", "Malmö"]
    assert error_frame(result.errors)["Rad"].tolist() == [3, 5, 5]


def test_explained_batch_adds_up_in_whole_kronor(predictor):
    result = quote_sheet(sheet(), predictor, explain=True)
    priced = result.table.dropna(subset=["predicted_price"])
    parts = priced.filter(like="contribution_")
    assert len(parts.columns) == 7
    assert (parts.sum(axis=1) + priced["base_price"] == priced["predicted_price"]).all()


def test_progress_reaches_one(predictor):
    seen = []
    quote_sheet(sheet(), predictor, progress=seen.append)
    assert seen[-1] == 1.0


def test_a_sheet_where_every_row_is_bad_still_explains_nothing_cleanly(predictor):
    lines = [LINES[0], "A;B;0;1;1;0;Ja;Lund;Årsvis", "C;D;1;1;1;0;Ja;;Årsvis"]
    result = quote_sheet(read_table("\n".join(lines).encode()), predictor, explain=True)
    assert (result.n_priced, result.n_error_rows) == (0, 2)
    assert result.table["error"].notna().all()
