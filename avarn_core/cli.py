"""The `avarn` command line: generate demo data, train, price spreadsheets, manage versions.

Each handler is a few lines over avarn_core; messages to the user are Swedish.
`avarn predict` exits 0 when every row was priced, 1 when some rows had errors (the file is
still written), 2 when nothing could be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from avarn_core.settings import get_settings


def _models_dir(args: argparse.Namespace) -> Path:
    return Path(args.models_dir) if args.models_dir else get_settings().models_dir


def _generate_data(args: argparse.Namespace) -> int:
    from avarn_core.synthetic import generate_quotes

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    generate_quotes(args.rows, seed=args.seed).to_csv(out, index=False)
    print(f"Skrev {args.rows} syntetiska offerter (demodata) till {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from avarn_core.io import ReadError
    from avarn_core.registry import load_version
    from avarn_core.train import train_file

    models_dir = _models_dir(args)

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    try:
        version = train_file(
            Path(args.data),
            models_dir,
            level=get_settings().interval_level,
            activate=not args.no_activate,
            progress=progress,
        )
    except (ReadError, ValueError) as exc:
        print(f"Kunde inte träna: {exc}", file=sys.stderr)
        return 2
    metadata = load_version(models_dir, version).metadata
    holdout = metadata["holdout"]
    print(
        f"Modell {version} sparad i {models_dir}"
        + (" och aktiverad" if not args.no_activate else "")
    )
    data = metadata["training_data"]
    print(f"  rader: {data['rows']} (bortsorterade: {data['rows_rejected']})")
    for line in data["rejected"][:20]:
        print(f"    {line}")
    if data["rows_rejected"] > 20:
        print(f"    … fler i {models_dir / version / 'metadata.json'}")
    print(
        f"  holdout MAPE: {holdout['mape']:.2%}, täckning {metadata['level']:.0%}-intervall: "
        f"{holdout['coverage']:.1%}, relativ bredd {holdout['mean_relative_width']:.1%}"
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    """Price a file. The result is written to a temporary file, the batch is logged, and only
    then is the file put in place: no logged quote goes undelivered, no file half-written."""
    from avarn_core.batch import quote_sheet
    from avarn_core.io import ReadError, read_table, to_csv_bytes, to_xlsx_bytes
    from avarn_core.predict import Predictor
    from avarn_core.predlog import PredictionLog
    from avarn_core.registry import ModelIntegrityError, ModelNotFoundError
    from avarn_core.service import PricingService

    try:
        predictor = Predictor.load(_models_dir(args))
    except (ModelNotFoundError, ModelIntegrityError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    service = PricingService(predictor, PredictionLog(get_settings().db_url))
    try:
        sheet = read_table(Path(args.data))
    except ReadError as exc:
        service.log_unreadable(str(exc), source="cli", name=Path(args.data).name)
        print(f"Kunde inte läsa {args.data}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.is_dir():
        print(f"Kunde inte skriva {out}: det är en mapp", file=sys.stderr)
        return 2
    result = quote_sheet(sheet, predictor, explain=args.explain)
    table = result.table.reset_index(drop=True)
    if out.suffix.lower() == ".xlsx":
        content = to_xlsx_bytes(table)
    else:
        content = to_csv_bytes(table, "," if sheet.separator == "," else ";")
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(content)
        service.log_sheet(result, source="cli")
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        print(f"Kunde inte skriva {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(
        f"{result.n_priced} av {result.n_rows} rader prisade, {result.n_warnings} med varning, "
        f"{result.n_error_rows} med fel. Resultat: {out}"
    )
    for error in result.errors[:20]:
        print(f"  {error}", file=sys.stderr)
    if len(result.errors) > 20:
        print(f"  … och {len(result.errors) - 20} fel till (se kolumnen error)", file=sys.stderr)
    return 1 if result.errors else 0


def _models(args: argparse.Namespace) -> int:
    from avarn_core.registry import list_versions

    versions = list_versions(_models_dir(args))
    if not versions:
        print(f"Inga modeller i {_models_dir(args)}. Träna en: avarn train --data PATH")
        return 0
    for meta in versions:
        mark = "*" if meta["active"] else " "
        holdout = meta.get("holdout", {})
        print(
            f"{mark} {meta['version']}  tränad {meta['trained_at']}  "
            f"rader {meta.get('rows', '?')}  holdout MAPE {holdout.get('mape', float('nan')):.2%}"
            f"  täckning {holdout.get('coverage', float('nan')):.1%}"
        )
    return 0


def _activate(args: argparse.Namespace) -> int:
    from avarn_core.registry import ModelNotFoundError, activate

    try:
        activate(_models_dir(args), args.version)
    except ModelNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"Modell {args.version} är nu aktiv")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    """Exit 0 when healthy, 1 on any alert, 2 when the active model cannot be read."""
    from avarn_core import monitoring
    from avarn_core.predlog import PredictionLog

    settings = get_settings()
    try:
        model = monitoring.read_active_model(_models_dir(args))
    except monitoring.ActiveModelError as exc:
        print(exc, file=sys.stderr)
        return 2
    log = PredictionLog(settings.db_url)
    since = datetime.now(UTC) - timedelta(days=args.since)
    report = monitoring.health(
        log.quotes(since=since),
        log.errors(since=since),
        profile=model.training_profile,
        holdout_mape=model.holdout_mape,
        settings=settings,
        model_version=model.version,
    )
    print(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else report.text()
    )
    return 0 if report.ok else 1


def _export_log(args: argparse.Namespace) -> int:
    from avarn_core.predlog import PredictionLog, export_quotes

    written = export_quotes(PredictionLog(get_settings().db_url).quotes(), Path(args.out))
    print(f"Skrev {len(written)} filer till {args.out}")
    return 0


def _actuals(args: argparse.Namespace) -> int:
    """Exit 1 when any id is unknown or any row is invalid (the valid rows are recorded)."""
    from avarn_core.predlog import PredictionLog, read_actuals_csv

    try:
        frame = read_actuals_csv(Path(args.data))
        result = PredictionLog(get_settings().db_url).record_actuals(frame)
    except (OSError, ValueError) as exc:
        print(f"Kan inte läsa {args.data}: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avarn", description="Avarn Pris: prissättning av brandlarmsprovning"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str, models_dir: bool = True):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if models_dir:
            sub.add_argument("--models-dir", help="modellmapp (standard: AVARN_MODELS_DIR)")
        return sub

    sub = command("generate-data", _generate_data, "skriv syntetisk demodata", models_dir=False)
    sub.add_argument("--rows", type=int, default=3000)
    sub.add_argument("--seed", type=int, default=42)
    sub.add_argument("--out", default="data/training_data.csv")

    sub = command("train", _train, "träna en ny modellversion på historiska offerter")
    sub.add_argument("--data", required=True, help="CSV/XLSX med de nio indata och pris")
    sub.add_argument("--no-activate", action="store_true", help="spara utan att aktivera")

    sub = command("predict", _predict, "prisa ett kalkylark (CSV/XLSX)")
    sub.add_argument("--data", required=True)
    sub.add_argument("--out", required=True)
    sub.add_argument("--explain", action="store_true", help="lägg till bidrag per indata i kr")

    command("models", _models, "lista modellversioner")
    sub = command("activate", _activate, "gör en äldre modellversion aktiv igen")
    sub.add_argument("version")

    sub = command("monitor", _monitor, "modellens hälsa i drift; slutkod 1 när en gräns passeras")
    sub.add_argument(
        "--since",
        type=float,
        default=30,
        metavar="DAYS",
        help="titta på loggens senaste DAYS dagar (standard 30)",
    )
    sub.add_argument("--json", action="store_true", help="skriv rapporten som JSON")

    sub = command(
        "export-log",
        _export_log,
        "skriv predictions.csv och en predictions_YYYY-MM-DD.jsonl per dag",
        models_dir=False,
    )
    sub.add_argument("--out", required=True, metavar="DIR")

    sub = command(
        "actuals",
        _actuals,
        "registrera faktiska priser från CSV: prediction_id,faktiskt_pris[,datum]",
        models_dir=False,
    )
    sub.add_argument("--data", required=True, metavar="FILE.csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    from avarn_core.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        level = get_settings().log_level
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    except (SettingsError, ValueError) as exc:
        print(f"Felaktig inställning: {exc}", file=sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
