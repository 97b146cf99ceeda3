"""Training time of scored runs: per run from its history.tsv (the per-epoch `time` column) or
else the time span of its train.log, and summed over the runs behind an aggregated summary."""
import os
from datetime import datetime

import numpy as np

from ser.errors import SerError


def _log_span(path):
    """Seconds between the first and last time stamp of a train.log ('YYYY-mm-dd HH:MM:SS ...')."""
    stamps = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    stamps.append(datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
                except ValueError:
                    continue
    except FileNotFoundError:
        return None
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) >= 2 else None


def read_history(run_dir):
    """Rows of a run's history.tsv as dicts of floats ([] if absent)."""
    path = os.path.join(run_dir, "history.tsv")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except FileNotFoundError:
        return []
    if not lines:
        return []
    header = lines[0]
    rows = []
    for lineno, parts in enumerate(lines[1:], 2):
        if len(parts) != len(header):
            raise SerError(f"{path}:{lineno}: expected {len(header)} fields, got {len(parts)}")
        row = {}
        for k, v in zip(header, parts):
            try:
                row[k] = float(v)
            except ValueError:
                raise SerError(f"{path}:{lineno}: not a number: {k}={v!r}") from None
        rows.append(row)
    return rows


def run_train_time(run_dir):
    """(training seconds, epochs) of a run: the sum of history.tsv's per-epoch `time`, else the
    time span of train.log; (None, None) when neither exists."""
    rows = read_history(run_dir)
    if rows and "time" in rows[0]:
        return float(sum(r["time"] for r in rows)), len(rows)
    return _log_span(os.path.join(run_dir, "train.log")), (len(rows) or None)


def train_time(summary):
    """Training wall time of the runs behind a summary: dict total, mean per run, runs, mean epochs."""
    times, epochs = [], []
    for r in summary.runs:
        t, e = run_train_time(r.run_dir)
        if t is not None:
            times.append(t)
        if e is not None:
            epochs.append(e)
    return {"total": float(sum(times)) if times else None,
            "per_run": float(np.mean(times)) if times else None,
            "runs": len(times),
            "mean_epochs": float(np.mean(epochs)) if epochs else None}
