"""Time writing one 100,000-row batch to a fresh SQLite prediction log.

    python benchmarks/log_write.py [--rows 100000] [--repeats 5]

Each repeat writes to a new file in a temporary folder (schema created before the clock
starts) through `PredictionLog.log_batch`, i.e. one transaction, as the app writes a table.
Prints every time and the median in seconds. Target: at most 5 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from avarn_core import db
from avarn_core.predlog import PredictionLog


def batch(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    interval = rng.integers(0, 3, n)
    price = rng.uniform(5_000, 80_000, n).round(2)
    return pd.DataFrame(
        {
            "antal_sektioner": rng.integers(1, 40, n),
            "antal_detektorer": rng.integers(0, 400, n),
            "antal_larmdon": rng.integers(0, 120, n),
            "dörrhållarmagneter": rng.integers(0, 60, n),
            "ventilation": rng.integers(0, 2, n),
            "stad": rng.choice(["Stockholm", "Göteborg", "Malmö", "Uppsala"], n),
            "kvartalsvis": (interval == 1).astype(int),
            "månadsvis": (interval == 2).astype(int),
            "årsvis": (interval == 0).astype(int),
            "predicted_price": price,
            "confidence_interval_lower": price * 0.85,
            "confidence_interval_upper": price * 1.15,
            "model_version": "bench",
            "feature_pipeline_version": "fp-1",
            "prediction_id": [uuid.uuid4().hex for _ in range(n)],
            "warning": None,
            "latency_ms": rng.uniform(1, 30, n),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    empty_errors = pd.DataFrame(columns=["row", "column", "value", "reason"])
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            log = PredictionLog(f"sqlite:///{Path(folder) / f'log{repeat}.db'}")
            log.count()  # create the schema outside the timing
            quotes = batch(args.rows, seed=repeat)
            start = time.perf_counter()
            log.log_batch(quotes, empty_errors, source="app-batch", batch_id=f"bench-{repeat}")
            times.append(time.perf_counter() - start)
            assert log.count() == args.rows
            print(f"repeat {repeat + 1}: {times[-1]:.2f} s")
        db.dispose_engines()
    print(f"median of {args.repeats}: {statistics.median(times):.2f} s for {args.rows:,} rows")


if __name__ == "__main__":
    main()
