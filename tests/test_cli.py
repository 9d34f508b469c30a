import shutil
from pathlib import Path

import pandas as pd
import pytest

from avarn_core.cli import main
from avarn_core.predlog import PredictionLog
from avarn_core.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cli_models(tmp_path, models_dir):
    target = tmp_path / "models"
    shutil.copytree(models_dir, target)
    return target


def test_generate_train_predict_and_versions(tmp_path, capsys):
    data = tmp_path / "data.csv"
    models = tmp_path / "models"
    assert main(["generate-data", "--rows", "400", "--seed", "3", "--out", str(data)]) == 0
    assert main(["train", "--data", str(data), "--models-dir", str(models)]) == 0
    assert main(["train", "--data", str(data), "--models-dir", str(models)]) == 0
    out = tmp_path / "out.csv"
    assert (
        main(
            [
                "predict",
                "--data",
                str(ROOT / "data" / "example_batch.csv"),
                "--out",
                str(out),
                "--models-dir",
                str(models),
            ]
        )
        == 0
    )
    result = pd.read_csv(out, sep=";", encoding="utf-8-sig")
    assert (result["model_version"] == "v0002").all()
    assert main(["activate", "v0001", "--models-dir", str(models)]) == 0
    capsys.readouterr()
    assert main(["models", "--models-dir", str(models)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("* v0001") and listing[1].startswith("  v0002")
    assert main(["activate", "v0009", "--models-dir", str(models)]) == 2


def test_predict_with_errors_writes_the_file_and_exits_1(tmp_path, cli_models):
    source = tmp_path / "in.csv"
    source.write_text(
        "Kund,antal_sektioner,antal_detektorer,antal_larmdon,dörrhållarmagneter,ventilation,"
        "stad,kvartalsvis,månadsvis,årsvis\n"
        "A,8,25,15,5,1,Stockholm,0,1,0\n"
        "B,8,-3,15,5,1,Stockholm,0,1,0\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    code = main(
        [
            "predict",
            "--data",
            str(source),
            "--out",
            str(out),
            "--explain",
            "--models-dir",
            str(cli_models),
        ]
    )
    assert code == 1
    log = PredictionLog(get_settings().db_url)
    assert log.quotes()["source"].tolist() == ["cli"]
    assert log.errors()["row"].tolist() == [3]
    result = pd.read_csv(out, sep=",", encoding="utf-8-sig")
    assert result["Kund"].tolist() == ["A", "B"]
    assert result["error"].isna().tolist() == [True, False]
    assert "Rad 3" in result.loc[1, "error"]
    parts = [c for c in result if c.startswith("contribution_")]
    row = result.iloc[0]
    assert row[parts].sum() + row["base_price"] == row["predicted_price"]


def test_predict_on_unreadable_file_exits_2(tmp_path, cli_models, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01binary")
    assert (
        main(
            [
                "predict",
                "--data",
                str(bad),
                "--out",
                str(tmp_path / "o.csv"),
                "--models-dir",
                str(cli_models),
            ]
        )
        == 2
    )
    assert "inget kalkylark" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_predict_without_a_model_exits_2(tmp_path, capsys):
    assert (
        main(
            [
                "predict",
                "--data",
                str(ROOT / "data" / "example_batch.csv"),
                "--out",
                str(tmp_path / "o.csv"),
                "--models-dir",
                str(tmp_path / "none"),
            ]
        )
        == 2
    )
    assert "avarn train" in capsys.readouterr().err


def test_predict_writes_xlsx_and_whole_kronor(tmp_path, cli_models):
    from openpyxl import load_workbook

    source = ROOT / "data" / "example_batch.csv"
    out = tmp_path / "out.xlsx"
    assert (
        main(
            [
                "predict",
                "--data",
                str(source),
                "--out",
                str(out),
                "--explain",
                "--models-dir",
                str(cli_models),
            ]
        )
        == 0
    )
    sheet = load_workbook(out).active
    header = [c.value for c in sheet[1]]
    row = [c.value for c in sheet[2]]
    assert isinstance(row[header.index("predicted_price")], int)
    assert isinstance(row[header.index("contribution_stad")], int)


def test_a_result_that_cannot_be_written_is_not_logged(tmp_path, cli_models, capsys):
    target = tmp_path / "a_folder"
    target.mkdir()
    code = main(
        [
            "predict",
            "--data",
            str(ROOT / "data" / "example_batch.csv"),
            "--out",
            str(target),
            "--models-dir",
            str(cli_models),
        ]
    )
    assert code == 2 and "Kunde inte skriva" in capsys.readouterr().err
    assert PredictionLog(get_settings().db_url).count() == 0
    assert list(tmp_path.glob(".*.tmp")) == []


def test_unreadable_file_is_logged_as_an_error(tmp_path, cli_models):
    bad = tmp_path / "bad.csv"
    bad.write_text("Kund;Stad\nA;Lund\n")
    assert (
        main(
            [
                "predict",
                "--data",
                str(bad),
                "--out",
                str(tmp_path / "o.csv"),
                "--models-dir",
                str(cli_models),
            ]
        )
        == 2
    )
    errors = PredictionLog(get_settings().db_url).errors()
    assert "Kolumn saknas" in errors["reason"].iloc[0] and errors["source"].iloc[0] == "cli"


def test_error_rows_keep_integer_columns_in_csv(tmp_path, cli_models):
    source = tmp_path / "in.csv"
    source.write_text(
        "antal_sektioner;antal_detektorer;antal_larmdon;dörrhållarmagneter;ventilation;stad;"
        "testintervall\n8;25;15;5;Ja;Lund;Årsvis\n8;-3;15;5;Ja;Lund;Årsvis\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    main(
        [
            "predict",
            "--data",
            str(source),
            "--out",
            str(out),
            "--explain",
            "--models-dir",
            str(cli_models),
        ]
    )
    first = out.read_text(encoding="utf-8-sig").splitlines()[1]
    assert ".0;" not in first and not first.endswith(".0")


def test_a_bad_setting_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("AVARN_INTERVAL_LEVEL", "ninety")
    get_settings.cache_clear()
    assert main(["models"]) == 2
    assert "AVARN_INTERVAL_LEVEL" in capsys.readouterr().err
