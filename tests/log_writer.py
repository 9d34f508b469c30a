"""A separate process writing to the prediction log (used by the concurrency and kill tests).

python tests/log_writer.py quotes URL N SEED   # N quotes, one transaction each
python tests/log_writer.py batch URL N         # one batch of N quotes, one transaction
"""

from __future__ import annotations

import sys

from fakes import fake_errors, fake_quotes

from avarn_core.predlog import PredictionLog


def main(mode: str, url: str, n: str, seed: str = "0") -> None:
    log = PredictionLog(url)
    if mode == "quotes":
        quotes = fake_quotes(int(n), seed=int(seed))
        for i in range(len(quotes)):
            log.log_quotes(quotes.iloc[[i]], source="api")
    else:
        quotes = fake_quotes(int(n), seed=int(seed))
        print("writing", flush=True)
        log.log_batch(quotes, fake_errors(10), source="app-batch", batch_id="big")
        print("committed", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
