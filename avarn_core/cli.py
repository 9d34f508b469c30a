"""The `avarn` command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from avarn_core import monitoring
from avarn_core.predlog import PredictionLog, export_quotes, read_actuals_csv
from avarn_core.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avarn", description="Avarn Pris")
    commands = parser.add_subparsers(dest="command", required=True)

    monitor = commands.add_parser(
        "monitor",
        help="health of the model in production; exit 1 when a threshold is crossed",
    )
    monitor.add_argument(
        "--since",
        type=float,
        default=30,
        metavar="DAYS",
        help="look at the last DAYS days of the log (default 30)",
    )
    monitor.add_argument("--json", action="store_true", help="print the report as JSON")
    monitor.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="models folder (default: AVARN_MODELS_DIR)",
    )
    monitor.set_defaults(handler=_monitor)

    export = commands.add_parser(
        "export-log", help="write predictions.csv and predictions_YYYY-MM-DD.jsonl per day"
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR")
    export.set_defaults(handler=_export_log)

    actuals = commands.add_parser(
        "actuals", help="record agreed prices from a CSV: prediction_id,faktiskt_pris[,datum]"
    )
    actuals.add_argument("--data", type=Path, required=True, metavar="FILE.csv")
    actuals.set_defaults(handler=_actuals)
    return parser


def _monitor(args: argparse.Namespace) -> int:
    """Exit 0 when healthy, 1 on any alert, 2 when the active model cannot be read."""
    settings = get_settings()
    try:
        model = monitoring.read_active_model(args.models_dir or settings.models_dir)
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
    written = export_quotes(PredictionLog(get_settings().db_url).quotes(), args.out)
    print(f"Skrev {len(written)} filer till {args.out}")
    return 0


def _actuals(args: argparse.Namespace) -> int:
    """Exit 1 when any id is unknown or any row is invalid (the valid rows are recorded)."""
    try:
        frame = read_actuals_csv(args.data)
        result = PredictionLog(get_settings().db_url).record_actuals(frame)
    except (OSError, ValueError) as exc:
        print(f"Kan inte läsa {args.data}: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
