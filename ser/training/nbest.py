"""The N best validated weight sets of a run and their average (config `average_best`, as ESPnet's
averaging of the n-best checkpoints).

Why: with one validation speaker per fold the validation UAR swings by 0.1-0.3 between epochs,
so the single best epoch is partly a lucky peak. The element-wise mean of the weights of the N
epochs with the best validation UAR is one model (no extra inference cost) that depends less on
any one of them. Batch-norm running statistics are averaged like the weights; integer buffers
(batches seen) are those of the best epoch.

Files: `<outdir>/checkpoints/best/epoch<E>.pt` (weights only, fp32 on CPU) for the epochs in the
ranking, which the training checkpoint holds, so that a resumed run keeps the same set; and, once
the average has been validated, `<outdir>/averaged.tsv` (owned here; read by ser.eval.fit):

    epochs  valid_loss  valid_uar  valid_wa
    12,15,18    0.8123  0.7301  0.7442

`epochs` lists the averaged epochs, best first; the scores are those of the averaged weights.
They come from the validation data that ranked the epochs, as the best epoch's own score does;
that score is the top of a noisy curve, so comparing the two on validation favours the best epoch.
The best epoch's own model file stays as `<outdir>/model_best_epoch.pt` (scorable like model.pt,
e.g. for a paired comparison of the two on test data).
"""
import os

import torch

from ser.data.atomic import atomic_write_text
from ser.errors import SerError
from ser.runtime.torch_files import cpu_state_dict, load_torch_file, save_torch_file

AVERAGED_FILE = "averaged.tsv"
BEST_EPOCH_MODEL_FILE = "model_best_epoch.pt"   # model.pt of the best epoch, kept beside the mean
AVERAGED_COLUMNS = ("epochs", "valid_loss", "valid_uar", "valid_wa")


def average_state_dicts(states):
    """Element-wise mean of floating-point entries (accumulated in float64, returned in each
    entry's dtype); other entries from the first state."""
    if not states:
        raise SerError("average_state_dicts: no state dicts to average")
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = torch.zeros_like(first, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            out[key] = (total / len(states)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


class BestWeights:
    """The weights of the `n` best validation scores of a run, in `directory` (ties keep the
    earlier epoch, as model selection does)."""

    def __init__(self, directory, n):
        self.directory = directory
        self.n = int(n)
        self.ranking = []          # [(score, epoch)], best first

    def path(self, epoch):
        return os.path.join(self.directory, f"epoch{epoch}.pt")

    def offer(self, score, epoch, model, write=True):
        """Rank `epoch`'s `score`; if it is among the n best, write `model`'s weights (when
        `write`, i.e. on the writing rank). Returns whether it was kept."""
        ranking = sorted(self.ranking + [(float(score), int(epoch))], key=lambda r: (-r[0], r[1]))[:self.n]
        if (float(score), int(epoch)) not in ranking:
            return False
        if write:
            os.makedirs(self.directory, exist_ok=True)
            save_torch_file(self.path(epoch), cpu_state_dict(model))
        self.ranking = ranking
        return True

    def prune(self):
        """Delete the weight files of epochs no longer ranked. Called once the training checkpoint
        that holds the ranking is written, so a killed run never refers to a deleted file."""
        if not os.path.isdir(self.directory):
            return
        keep = {os.path.basename(self.path(e)) for _, e in self.ranking}
        for name in os.listdir(self.directory):
            if name.endswith(".pt") and name not in keep:
                os.remove(os.path.join(self.directory, name))

    @property
    def epochs(self):
        return [e for _, e in self.ranking]

    def average(self):
        """The mean of the ranked epochs' weights (on CPU)."""
        states = [load_torch_file(self.path(e), "{path}: unreadable weights of a best epoch ({error})")
                  for e in self.epochs]
        return average_state_dicts(states)

    def state_dict(self):
        return {"n": self.n, "ranking": [list(r) for r in self.ranking]}

    def load_state_dict(self, state):
        self.ranking = [(float(s), int(e)) for s, e in state["ranking"]]


def write_averaged(outdir, epochs, scores):
    """averaged.tsv: the averaged epochs and the (valid_loss, valid_uar, valid_wa) of the average."""
    row = [",".join(str(e) for e in epochs)] + [f"{v:.6g}" for v in scores]
    atomic_write_text(os.path.join(outdir, AVERAGED_FILE),
                      "\t".join(AVERAGED_COLUMNS) + "\n" + "\t".join(row) + "\n")


def read_averaged(run_dir):
    """{epochs: [int], valid_loss, valid_uar, valid_wa} from a run's averaged.tsv, or None."""
    path = os.path.join(run_dir, AVERAGED_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except FileNotFoundError:
        return None
    if len(lines) != 2 or tuple(lines[0]) != AVERAGED_COLUMNS or len(lines[1]) != len(AVERAGED_COLUMNS):
        raise SerError(f"{path}: expected a header {' '.join(AVERAGED_COLUMNS)} and one row")
    try:
        epochs = [int(e) for e in lines[1][0].split(",")]
        loss, uar, wa = (float(v) for v in lines[1][1:])
    except ValueError:
        raise SerError(f"{path}:2: expected comma-separated epochs and three numbers") from None
    return {"epochs": epochs, "valid_loss": loss, "valid_uar": uar, "valid_wa": wa}
