"""The training loop: Adam, optional mixup, utterance-level validation UAR, LR plateau halving,
early stopping, a checkpoint every epoch and bit-identical resumption (paper sec. 4.3-4.4).

Files in `outdir`: train.log (one line per epoch, also on stderr), history.tsv, checkpoints/last.pt,
model.pt (best validation UAR; ties keep the earlier epoch) and, last, `done`.

history.tsv columns: epoch, lr (the rate used during the epoch), train_loss (mean segment
cross-entropy, against the mixed labels under mixup), valid_loss (mean over validation
utterances of -log of the utterance posterior of the true class), valid_uar, valid_wa (both at
utterance level: segment posteriors averaged per utterance), time (seconds).
"""
import logging
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ser.data.atomic import atomic_open, atomic_write_text
from ser.errors import SerError
from ser.eval.metrics import uar, weighted_accuracy
from ser.training.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from ser.training.inference import posteriors_of_segment_sets
from ser.training.mixup import mixup_batch, soft_cross_entropy
from ser.training.model_io import MODEL_FILE, save_model
from ser.training.plateau import Plateau

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "valid_loss", "valid_uar", "valid_wa", "time")
CHECKPOINT = os.path.join("checkpoints", "last.pt")
LOGGER = "ser.train"


def select_device(ngpu=None):
    """--ngpu 0 -> cpu, 1 -> cuda:0 (SerError without CUDA); None -> cuda:0 if available."""
    if ngpu is None:
        ngpu = 1 if torch.cuda.is_available() else 0
    if ngpu == 0:
        return torch.device("cpu")
    if ngpu != 1:
        raise SerError(f"--ngpu {ngpu}: only 0 (CPU) or 1 GPU is supported")
    if not torch.cuda.is_available():
        raise SerError("--ngpu 1 but CUDA is not available")
    return torch.device("cuda:0")


def epoch_batches(num_items, batch_size, generator, cap=None):
    """Index batches of one epoch: a random permutation from `generator`, optionally cut to its
    first `cap` items. A last batch of a single segment is dropped (batch-norm cannot train on
    one example, and it is a different random segment every epoch)."""
    order = torch.randperm(num_items, generator=generator)
    if cap is not None:
        order = order[:cap]
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _format_row(row):
    out = []
    for k in HISTORY_COLUMNS:
        v = row[k]
        out.append(str(v) if k == "epoch" else ("nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"))
    return "\t".join(out)


def write_history(path, history):
    """history.tsv: a header line and one row per epoch."""
    atomic_write_text(path, "\t".join(HISTORY_COLUMNS) + "\n" + "".join(_format_row(r) + "\n" for r in history))


class _LogToOutdir:
    """Attach train.log and stderr handlers to the training logger for the duration of a run."""

    def __init__(self, outdir):
        self.logger = logging.getLogger(LOGGER)
        self.handlers = [logging.FileHandler(os.path.join(outdir, "train.log"), encoding="utf-8"),
                         logging.StreamHandler(sys.stderr)]

    def __enter__(self):
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for h in self.handlers:
            h.setFormatter(fmt)
            self.logger.addHandler(h)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        return self.logger

    def __exit__(self, *exc):
        for h in self.handlers:
            self.logger.removeHandler(h)
            h.close()


class Trainer:
    """Train `model` on `data` (a dataset.PreparedData) with the resolved `config`.

    `meta` is the model.pt meta without cmvn (added here from `data`). The caller seeds the
    global generators (checkpoint.seed_everything) before building the model; the data-order and
    mixup generator is seeded here from `seed`. `on_epoch_end(epoch)` is called after an
    epoch's checkpoint is written (tests raise from it to simulate a killed job); `notes` are
    logged at the start of the run.
    """

    def __init__(self, model, data, config, outdir, device, seed, meta, on_epoch_end=None, notes=()):
        self.model = model.to(device)
        self.data = data
        self.config = config
        self.outdir = outdir
        self.device = torch.device(device)
        self.num_classes = meta["num_classes"]
        self.meta = dict(meta, cmvn_mean=[float(v) for v in data.cmvn_mean],
                         cmvn_std=[float(v) for v in data.cmvn_std])
        self.on_epoch_end = on_epoch_end
        self.notes = list(notes)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config["optim"]["lr"],
                                          weight_decay=config["optim"]["weight_decay"])
        self.plateau = Plateau(config["plateau"]["patience"], config["plateau"]["factor"],
                               config["early_stop_patience"])
        self.history = []
        self.epoch = 0
        self.finished = False
        self.valid_utts = list(data.valid_segments)
        self.valid_true = np.array([data.valid_labels[u] for u in self.valid_utts], dtype=np.int64)

    # --- state -------------------------------------------------------------------------------
    def state_dict(self):
        return {"epoch": self.epoch, "finished": self.finished, "history": self.history,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "plateau": self.plateau.state_dict(), "rng": rng_states(self.generator)}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.plateau.load_state_dict(state["plateau"])
        set_rng_states(state["rng"], self.generator)
        self.epoch, self.finished, self.history = state["epoch"], state["finished"], state["history"]

    @property
    def lr(self):
        return self.optimizer.param_groups[0]["lr"]

    def _set_lr(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # --- one epoch ---------------------------------------------------------------------------
    def train_epoch(self):
        """One pass over (a subset of) the training segments; returns the mean loss."""
        cfg = self.config
        batches = epoch_batches(len(self.data.train_set), cfg["batch_size"], self.generator,
                                cfg["max_train_segments_per_epoch"])
        loader = torch.utils.data.DataLoader(self.data.train_set, batch_sampler=batches,
                                             num_workers=cfg["num_workers"])
        self.model.train()
        total, count = 0.0, 0
        mix = cfg["mixup"]
        for x, y in tqdm(loader, desc=f"epoch {self.epoch + 1}", file=sys.stderr, leave=False,
                         mininterval=1.0 if sys.stderr.isatty() else 30.0):
            x, y = x.to(self.device), y.to(self.device)
            if mix["enabled"]:
                onehot = F.one_hot(y, self.num_classes).float()
                x, target, _ = mixup_batch(x, onehot, mix["alpha"], self.generator)
                loss = soft_cross_entropy(self.model(x), target)
            else:
                loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        return total / max(count, 1)

    def validate(self):
        """(valid_loss, UAR, WA) at utterance level."""
        post = posteriors_of_segment_sets(self.model, self.data.valid_segments, self.device,
                                          self.config["valid_batch_size"])
        probs = np.stack([post[u] for u in self.valid_utts])
        pred = probs.argmax(axis=1)
        loss = float(-np.log(np.maximum(probs[np.arange(len(pred)), self.valid_true], 1e-12)).mean())
        return (loss, uar(self.valid_true, pred, self.num_classes),
                weighted_accuracy(self.valid_true, pred, self.num_classes))

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        """Train (resuming from checkpoints/last.pt if present), then write `done`."""
        os.makedirs(os.path.join(self.outdir, "checkpoints"), exist_ok=True)
        with _LogToOutdir(self.outdir) as log:
            for note in self.notes:
                log.info(note)
            ckpt = os.path.join(self.outdir, CHECKPOINT)
            if os.path.exists(ckpt):
                self.load_state_dict(load_checkpoint(ckpt))
                log.info(f"resumed from {ckpt} after epoch {self.epoch}")
            max_epochs = self.config["max_epochs"]
            if not self.valid_utts and not self.finished:
                log.info("no validation utterances: no model selection or LR schedule; model.pt = last epoch")
            while not self.finished and self.epoch < max_epochs:
                self._one_epoch(log, max_epochs)
            model_path = os.path.join(self.outdir, MODEL_FILE)
            if not os.path.exists(model_path):  # never validated successfully: keep the last model
                save_model(model_path, self.model, dict(self.meta, best_epoch=self.epoch, valid_uar=None))
            best = self.plateau.best if self.plateau.best > -math.inf else float("nan")
            best_epoch = self.plateau.best_epoch if self.valid_utts else self.epoch
            summary = f"best_epoch {best_epoch} valid_uar {best:.4f} epochs {self.epoch}\n"
            log.info("finished: " + summary.strip())
            atomic_write_text(os.path.join(self.outdir, "done"), summary)
        return {"best_epoch": best_epoch, "valid_uar": best, "epochs": self.epoch}

    def _one_epoch(self, log, max_epochs):
        start = time.time()
        lr = self.lr
        train_loss = self.train_epoch()
        self.epoch += 1
        every = self.config["valid_every"]
        row = {"epoch": self.epoch, "lr": lr, "train_loss": train_loss,
               "valid_loss": float("nan"), "valid_uar": float("nan"), "valid_wa": float("nan")}
        note, stop = "", False
        model_path = os.path.join(self.outdir, MODEL_FILE)
        if self.valid_utts and (self.epoch % every == 0 or self.epoch == max_epochs):
            row["valid_loss"], row["valid_uar"], row["valid_wa"] = self.validate()
            improved, new_lr, stop = self.plateau.step(row["valid_uar"], self.epoch, lr)
            if improved:
                save_model(model_path, self.model,
                           dict(self.meta, best_epoch=self.epoch, valid_uar=row["valid_uar"]))
                note += " *best*"
            if new_lr != lr:
                self._set_lr(new_lr)
                note += f" lr -> {new_lr:.3g}"
            if stop:
                note += f" early stop ({self.plateau.bad_total} validations without improvement)"
        elif not self.valid_utts:
            save_model(model_path, self.model, dict(self.meta, best_epoch=self.epoch, valid_uar=None))
        row["time"] = time.time() - start
        self.history.append(row)
        self.finished = stop or self.epoch >= max_epochs
        save_checkpoint(os.path.join(self.outdir, CHECKPOINT), self.state_dict())
        write_history(os.path.join(self.outdir, "history.tsv"), self.history)
        log.info(f"epoch {self.epoch}/{max_epochs} lr {lr:.3g} train_loss {train_loss:.4f} "
                 f"valid_loss {row['valid_loss']:.4f} valid_uar {row['valid_uar']:.4f} "
                 f"valid_wa {row['valid_wa']:.4f} time {row['time']:.1f}s{note}")
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.epoch)
