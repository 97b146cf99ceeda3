"""How well each run fitted: from its history.tsv, the epoch the model was selected at (the first
epoch with the best validation UAR, as the trainer keeps it), the training and validation loss
there, and the lowest training loss of the run. A high training loss at the selected epoch means
the model underfits; a low one with a validation loss far above it means it overfits. A run whose
model.pt is the mean of its best epochs (config `average_best`) has the validation scores of that
mean in averaged.tsv: they replace the best epoch's, which stays the epoch reported."""
import numpy as np

from ser.eval.train_time import read_history
from ser.training.nbest import read_averaged

KEYS = ("best_epoch", "valid_uar", "train_loss", "valid_loss", "min_train_loss", "averaged")


def best_validated_epoch(rows):
    """The history row of the epoch the trainer selects (the first with the best validation UAR;
    epochs never validated are not candidates), or None when no epoch was validated."""
    validated = [r for r in rows if not np.isnan(r.get("valid_uar", np.nan))]   # none in a refit
    return max(validated, key=lambda r: r["valid_uar"]) if validated else None   # max: the first of equal maxima


def run_fit(run_dir):
    """{best_epoch, valid_uar, train_loss, valid_loss, min_train_loss, averaged (1.0 when the
    validation scores are those of averaged.tsv, else 0.0)} of a run, or None without a history
    with validation scores (epochs never validated are not candidates)."""
    rows = read_history(run_dir)
    if not rows or not all(k in rows[0] for k in ("valid_uar", "train_loss", "valid_loss")):
        return None
    best = best_validated_epoch(rows)
    if best is None:
        return None
    fit = {"best_epoch": int(best["epoch"]), "valid_uar": best["valid_uar"],
           "train_loss": best["train_loss"], "valid_loss": best["valid_loss"],
           "min_train_loss": min(r["train_loss"] for r in rows), "averaged": 0.0}
    averaged = read_averaged(run_dir)
    if averaged is not None:
        fit.update(valid_uar=averaged["valid_uar"], valid_loss=averaged["valid_loss"], averaged=1.0)
    return fit


def fit_summary(summary):
    """The mean of run_fit over the runs behind an aggregated summary (None without histories)."""
    fits = [f for f in (run_fit(r.run_dir) for r in summary.runs) if f is not None]
    if not fits:
        return None
    return dict({k: float(np.mean([f[k] for f in fits])) for k in KEYS}, runs=len(fits))
