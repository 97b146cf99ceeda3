"""Learning-rate halving and early stopping driven by the validation score (paper sec. 4.4).

"If the validation accuracy does not improve for five consecutive epochs, we halve the learning
rate and stop the process if the validation accuracy does not improve for 20 consecutive
epochs." Here the score is the utterance-level validation UAR; higher is better.

- improvement = strictly higher than the best so far (a tie keeps the earlier best);
- after `patience` validations without improvement the LR is multiplied by `factor` and that
  counter restarts (so with patience 5 the LR is halved after 5, 10, 15, ... bad epochs);
- after `early_stop_patience` validations without improvement training stops.
Counts are in validations (= epochs with the default valid_every: 1).
"""
import math

from ser.errors import SerError


class Plateau:
    """State machine fed with one validation score at a time (see the module docstring)."""

    def __init__(self, patience=5, factor=0.5, early_stop_patience=20, min_lr=0.0):
        if patience < 1 or early_stop_patience < 1:
            raise SerError(f"plateau patience ({patience}) and early_stop_patience ({early_stop_patience}) must be >= 1")
        if not 0.0 < factor <= 1.0:
            raise SerError(f"plateau factor must be in (0, 1], got {factor}")
        self.patience = patience
        self.factor = factor
        self.early_stop_patience = early_stop_patience
        self.min_lr = min_lr
        self.best = -math.inf
        self.best_epoch = 0
        self.bad_since_decay = 0
        self.bad_total = 0

    def step(self, score, epoch, lr):
        """Record `score` of `epoch`; returns (improved, new_lr, stop)."""
        improved = score is not None and not math.isnan(score) and score > self.best
        if improved:
            self.best, self.best_epoch = float(score), epoch
            self.bad_since_decay = self.bad_total = 0
            return True, lr, False
        self.bad_since_decay += 1
        self.bad_total += 1
        if self.bad_since_decay >= self.patience:
            lr = max(lr * self.factor, self.min_lr)
            self.bad_since_decay = 0
        return False, lr, self.bad_total >= self.early_stop_patience

    def state_dict(self):
        return {k: getattr(self, k) for k in ("best", "best_epoch", "bad_since_decay", "bad_total")}

    def load_state_dict(self, state):
        for k, v in state.items():
            setattr(self, k, v)
