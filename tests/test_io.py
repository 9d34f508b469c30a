import io
import re

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from avarn_core.io import MAX_RECORDS, ReadError, read_table, to_csv_bytes, to_xlsx_bytes
from avarn_core.schema import validate_table

HEADER = (
    "Kund;Antal sektioner;Antal detektorer;Antal larmdon;Dörrhållarmagneter;Ventilation;Stad;"
    "Testintervall"
)
ROWS = [
    "Brf Eken;8;25;15;5;Ja;Stockholm;Månadsvis",
    "Skolan;3;12;4;0;Nej;goteborg;Årsvis",
]


def csv_bytes(lines, encoding="utf-8-sig", sep=";"):
    return "\r\n".join(line.replace(";", sep) for line in lines).encode(encoding)


@pytest.mark.parametrize(
    "encoding,sep",
    [("utf-8-sig", ";"), ("utf-8", ";"), ("cp1252", ";"), ("utf-8", ","), ("cp1252", "\t")],
)
def test_reads_csv_as_swedish_excel_writes_it(encoding, sep):
    sheet = read_table(csv_bytes([HEADER, *ROWS], encoding, sep))
    assert sheet.columns["dörrhållarmagneter"] == "Dörrhållarmagneter"
    assert sheet.frame["Kund"].tolist() == ["Brf Eken", "Skolan"]
    v = validate_table(sheet.canonical(), sheet.columns, sheet.rows)
    assert v.errors == []
    assert v.inputs["stad"].tolist() == ["Stockholm", "Goteborg"]  # matched to Göteborg when priced


def test_headers_in_any_case_and_spacing_and_three_flag_columns():
    header = (
        "ANTAL_SEKTIONER,antal detektorer , Antal  Larmdon,dorrhallarmagneter,VENTILATION,stad,"
        "Årsvis,kvartalsvis,MÅNADSVIS"
    )
    sheet = read_table(csv_bytes([header, "8,25,15,5,1,Lund,0,0,1"], sep=","))
    v = validate_table(sheet.canonical(), sheet.columns, sheet.rows)
    assert v.errors == [] and v.inputs["månadsvis"].tolist() == [1]


def test_extra_columns_pass_through_untouched():
    sheet = read_table(csv_bytes(["Postnr;" + HEADER, "00123;" + ROWS[0]]))
    assert sheet.frame["Postnr"].tolist() == ["00123"]


def test_row_numbers_follow_excel_with_blank_lines():
    sheet = read_table(csv_bytes([HEADER, ROWS[0], "", ";;;;;;;", ROWS[1]]))
    assert sheet.rows.tolist() == [2, 5]


def test_data_in_an_untitled_column_is_kept_not_lost():
    sheet = read_table(csv_bytes([HEADER + ";", ROWS[0] + ";ring innan", ROWS[1]]))
    assert sheet.rows.tolist() == [2, 3]
    assert sheet.frame["Kund"].tolist() == ["Brf Eken", "Skolan"]
    assert sheet.frame["kolumn_9"].tolist() == ["ring innan", None]


def test_excel_sep_hint_utf16_and_title_rows():
    data = csv_bytes(["sep=,", "Offertlista 2026", "", HEADER, *ROWS], sep=",")
    sheet = read_table(data)
    assert sheet.separator == "," and sheet.rows.tolist() == [4, 5]
    utf16 = "\r\n".join([HEADER, *ROWS]).encode("utf-16")
    assert read_table(utf16).frame["Kund"].tolist() == ["Brf Eken", "Skolan"]


def test_column_names_that_repeat_or_collide_with_ours():
    header = "Kommentar;Ort;Error;" + HEADER + ";Kommentar;Dörrhållar-magneter"
    header = header.replace(";Dörrhållarmagneter;", ";Antal X;")
    sheet = read_table(csv_bytes([header, "a;Solna;e1;" + ROWS[0] + ";b;5"]))
    assert sheet.columns["stad"] == "Stad" and sheet.columns["dörrhållarmagneter"] == (
        "Dörrhållar-magneter"
    )
    assert sheet.frame[["Kommentar", "Kommentar (2)", "Ort", "Error (indata)"]].values.tolist() == [
        ["a", "b", "Solna", "e1"]
    ]


def test_a_results_file_uploaded_again_is_priced_afresh(predictor):
    from avarn_core.batch import quote_sheet

    first = quote_sheet(read_table(csv_bytes([HEADER, *ROWS])), predictor)
    again = read_table(to_csv_bytes(first.table))
    assert list(again.frame.columns) == HEADER.split(";")


def test_stale_xlsx_dimension_does_not_lose_rows():
    data = xlsx_bytes([HEADER.split(";"), *[row.split(";") for row in ROWS * 3]])
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(
                    rb'<dimension ref="[^"]+" ?/>', b'<dimension ref="A1:C2"/>', content
                )
                assert b'ref="A1:C2"' in content
            target.writestr(item, content)
    sheet = read_table(out.getvalue())
    assert sheet.rows.tolist() == [2, 3, 4, 5, 6, 7]


def test_reading_is_bounded_whatever_the_file_claims():
    book = Workbook()
    book.active["A1"] = "Stad"
    book.active.cell(row=MAX_RECORDS + 10, column=1, value="Lund")
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(ReadError, match="fler än"):
        read_table(buffer.getvalue())
    with pytest.raises(ReadError, match="fler än"):
        read_table((HEADER + "\n" * (MAX_RECORDS + 5) + ROWS[0]).encode())


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"", "tom"),
        (b"   \r\n", "tom"),
        (HEADER.encode(), "inga rader"),
        (b"\x00\x01\x02\x03binary" * 20, "inget kalkylark"),
        (b"\xd0\xcf\x11\xe0old excel", ".xls"),
        (b"PK\x03\x04not really a zip", "Excel-filen kunde inte"),
        (b"Kund;Antal sektioner;Stad\nA;1;Lund", "Antal detektorer"),
        (b"Stad;Stad\nA;B", "betyder samma sak"),
    ],
)
def test_unreadable_files_give_one_clear_swedish_error(data, needle):
    with pytest.raises(ReadError, match=needle):
        read_table(data)


def test_missing_file_path_is_a_read_error(tmp_path):
    with pytest.raises(ReadError, match="kunde inte öppnas"):
        read_table(tmp_path / "saknas.csv")


def xlsx_bytes(rows):
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_reads_xlsx_with_numbers_and_text():
    data = xlsx_bytes(
        [
            HEADER.split(";"),
            ["Brf Eken", 8, 25.0, 15, 5, "Ja", "Stockholm", "Månadsvis"],
            [None] * 8,
            ["Skolan", 3, 12, 4, 0, True, "Malmo", "kvartalsvis"],
        ]
    )
    sheet = read_table(data)
    assert sheet.rows.tolist() == [2, 4]
    v = validate_table(sheet.canonical(), sheet.columns, sheet.rows)
    assert v.errors == []
    assert v.inputs["antal_detektorer"].tolist() == [25, 12]


def test_formula_injection_is_neutralised_and_numbers_stay_numbers():
    frame = pd.DataFrame(
        {
            "Kund": ['=HYPERLINK("http://x")', "+46 8 123", "@SUM(A1)", "\tTab", "Vanlig", "-5"],
            "predicted_price": [100, 200, 300, 400, 500, 600],
        }
    )
    text = to_csv_bytes(frame).decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'+46 8 123" in text and "'@SUM" in text
    assert "\n-5;" in text  # a plain number is not a formula
    book = load_workbook(io.BytesIO(to_xlsx_bytes(frame)))
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    assert cells[1] == ['\'=HYPERLINK("http://x")', 100]
    assert all(isinstance(row[1], int) for row in cells[1:])
    assert all(cell.data_type != "f" for row in book.active.iter_rows() for cell in row)
