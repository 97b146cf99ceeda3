"""The training loop: Adam, optional mixup, utterance-level validation UAR, LR plateau halving,
early stopping, a checkpoint every epoch and bit-identical resumption (paper sec. 4.3-4.4).

Files in `outdir`: train.log (one line per epoch, also on stderr), history.tsv, checkpoints/last.pt,
model.pt (best validation UAR; ties keep the earlier epoch) and, last, `done`. With `weight_ema`
enabled, validation, model selection and model.pt use the moving average of the weights
(ser.training.weight_ema); train_loss is that of the weights being trained. With `average_best`
N > 1 the weights of the N best validated epochs are kept (checkpoints/best/) and, when training
ends, model.pt becomes their mean, validated once more (averaged.tsv; ser.training.nbest), and the
best epoch's model moves to model_best_epoch.pt; until then model.pt is the best epoch's, so a
killed run still has a usable model. A run without validation data (a refit, ser.training.refit:
its epochs and learning rates come from the source run) saves the last epoch's model.pt.

history.tsv columns: epoch, lr (the rate used during the epoch), train_loss (mean segment
cross-entropy, against the mixed labels under mixup, class-weighted under `class_weights`, whose
weights go to train.log), valid_loss (mean over validation utterances of -log of the utterance
posterior of the true class), valid_uar, valid_wa (both at utterance level: segment posteriors
averaged per utterance), time (seconds).

Data-parallel training (several processes started by torchrun, see ser/runtime/distributed.py
and utils/launch_train.sh): every rank draws the same epoch order, batches and mixup weights from
its copy of the shared generator, and trains on its contiguous share of each GLOBAL batch
(`batch_size` stays the global batch; it must divide by the number of processes), so the ranks
together see exactly the batches of a single-process run; DDP averages the gradients. Mixup
partners are the single-process ones: a rank loads the partner segments of its share itself.
A last global batch smaller than the number of processes is dropped. BatchNorm statistics are
per process unless the config says `sync_batchnorm: true`. Validation utterances are split
between the ranks and the posteriors gathered; rank 0 takes the plateau/early-stop decision and
broadcasts it. Rank 0 alone writes files; the checkpoint holds every rank's random states, so a
resumed run with the same number of processes continues bit-identically. Dropout masks come from
each rank's own stream (seeded per rank), so a run with dropout or per-process BatchNorm is not
numerically the single-process run.
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ser.data.atomic import atomic_copy, atomic_write_text
from ser.errors import SerError
from ser.metrics import uar, weighted_accuracy
from ser.runtime import distributed as D
from ser.runtime.checkpoint import kill_hook, rng_states, seed_rank_streams
from ser.runtime.precision import autocast, check_precision, grad_scaler, prepare_model
from ser.runtime.run_dir import RunDir
from ser.runtime.torch_files import MODEL_FILE
from ser.training.class_weights import class_weights
from ser.training.curves import CurvesWriter
from ser.training.inference import posteriors_of_segment_sets
from ser.training.mixup import mixup_batch, sample_lambda, smooth_labels, soft_cross_entropy
from ser.training.model_io import save_model
from ser.training.nbest import BEST_EPOCH_MODEL_FILE, BestWeights, write_averaged
from ser.training.plateau import Plateau
from ser.training.spec_augment import apply_masks, draw_masks
from ser.training.weight_ema import WeightEma

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "valid_loss", "valid_uar", "valid_wa", "time")
LOGGER = "ser.train"
# Tests: exit (status ser.runtime.checkpoint.KILL_STATUS) after the checkpoint of this epoch, as a
# killed job would.
KILL_ENV = "SER_TRAIN_KILL_AFTER_EPOCH"


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


def mixup_partners(batch, lo, hi, alpha, generator):
    """(lam, dataset indices of the mixup partners of batch[lo:hi], their positions in the
    batch) for one global batch.

    Draws exactly what mixup_batch draws for the whole batch (lam, then a permutation of it), so
    every rank, drawing from its copy of the shared generator, mixes its share with the partners
    a single process would use."""
    lam = sample_lambda(alpha, generator)
    perm = torch.randperm(len(batch), generator=generator)[lo:hi].tolist()
    return lam, [batch[j] for j in perm], perm


def _format_row(row):
    out = []
    for k in HISTORY_COLUMNS:
        v = row[k]
        out.append(str(v) if k == "epoch" else ("nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"))
    return "\t".join(out)


def write_history(path, history):
    """history.tsv: a header line and one row per epoch."""
    atomic_write_text(path, "\t".join(HISTORY_COLUMNS) + "\n" + "".join(_format_row(r) + "\n" for r in history))


class Trainer:
    """Train `model` on `data` (a dataset.PreparedData) with the resolved `config`.

    `meta` is the model.pt meta without cmvn (added here from `data`). The caller seeds the
    global generators (ser.runtime.checkpoint.seed_everything) before building the model; the
    data-order and mixup generator is seeded here from `seed`. `on_epoch_end(epoch)` is called after an
    epoch's checkpoint is written (tests raise from it to simulate a killed job; default: the
    SER_TRAIN_KILL_AFTER_EPOCH hook); `notes` are logged at the start of the run. `lr_schedule`
    (a refit, ser.training.refit): the learning rate of each epoch, which also sets the number of
    epochs; the data then has no validation set.

    Under torch.distributed (distributed.setup() joined a process group) `device` is this
    rank's device and the model is wrapped in DDP (see the module docstring).
    """

    def __init__(self, model, data, config, outdir, device, seed, meta, on_epoch_end=None, notes=(),
                 lr_schedule=None):
        self.lr_schedule = list(lr_schedule) if lr_schedule is not None else None
        if self.lr_schedule is not None and (not self.lr_schedule or data.valid_segments):
            raise SerError("a learning-rate schedule (refit) needs at least one epoch and no validation data")
        self.device = torch.device(device)
        self.world, self.rank = D.world_size(), D.rank()
        self.sync_batchnorm = bool(config.get("sync_batchnorm", False)) and self.world > 1
        D.per_process_batch(config["batch_size"], self.world)   # SerError unless it divides
        check_precision(config["precision"], self.device, "config 'precision'")
        self.precision = config["precision"]
        self.scaler = grad_scaler(self.precision, self.device)
        model = prepare_model(model, self.device)
        if self.sync_batchnorm:
            model = D.convert_sync_batchnorm(model, self.device)
        self.model = model                        # the module being trained: its state dicts
        ema = config["weight_ema"]                # (copied before DDP adds its gradient hooks)
        self.ema = WeightEma(model, ema["decay"]) if ema["enabled"] else None
        self.net = D.wrap_ddp(model, self.device)  # what is trained (DDP under torch.distributed)
        # what is validated and saved as model.pt: the averaged weights, else the trained ones
        self.eval_model = self.ema.module if self.ema else model
        n_best = config["average_best"]
        self.best_weights = BestWeights(os.path.join(outdir, "checkpoints", "best"), n_best) if n_best > 1 else None
        seed_rank_streams(seed)
        self.data = data
        self.config = config
        self.outdir = outdir
        self.curves = CurvesWriter(outdir, "training", config["tensorboard"])
        self.num_classes = meta["num_classes"]
        # per-class loss weights (None: plain cross-entropy), from the training segments' labels
        self.class_weights = class_weights(config.get("class_weights", "none"), data.train_set.segment_labels(),
                                           self.num_classes)
        if self.class_weights is not None:
            names = meta.get("classes") or [str(c) for c in range(self.num_classes)]
            notes = [*notes, f"class weights ({config['class_weights']}): "
                     + " ".join(f"{c} {w:.3f}" for c, w in zip(names, self.class_weights.tolist()))]
            self.class_weights = self.class_weights.to(self.device)
        self.meta = dict(meta, cmvn_mean=[float(v) for v in data.cmvn_mean],
                         cmvn_std=[float(v) for v in data.cmvn_std])
        # log, checkpoint and done; on_epoch_end is called after each epoch's checkpoint
        self.run_dir = RunDir(outdir, LOGGER, on_epoch_end if on_epoch_end is not None else kill_hook(KILL_ENV),
                              notes)
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
        bn = "synchronised (global batch)" if self.sync_batchnorm else "per process"
        self.run_dir.note_processes(config["batch_size"], f", batch norm {bn}")

    # --- state -------------------------------------------------------------------------------
    def state_dict(self):
        """The checkpoint: model, optimizer, plateau, scaler, epoch, history and random states (a
        collective under torch.distributed, see RunDir.add_rank_states)."""
        return self.run_dir.add_rank_states({
            "epoch": self.epoch, "finished": self.finished, "history": self.history,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "plateau": self.plateau.state_dict(), "rng": rng_states(self.generator),
            "scaler": self.scaler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "best_weights": self.best_weights.state_dict() if self.best_weights else None})

    def load_state_dict(self, state):
        """Continue from checkpoint `state`; returns RunDir.restore_rng's note (None unless the
        number of processes changed)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.plateau.load_state_dict(state["plateau"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        if self.best_weights:
            self.best_weights.load_state_dict(state["best_weights"])
        self.epoch, self.finished, self.history = state["epoch"], state["finished"], state["history"]
        # the shared generator (data order, mixup) continues; other ranks' dropout streams are
        # re-seeded from the epoch when the number of processes changed
        return self.run_dir.restore_rng(state, self.generator, self.epoch, "data order and mixup")

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
        world, rank = self.world, self.rank
        batches = epoch_batches(len(self.data.train_set), cfg["batch_size"], self.generator,
                                cfg["max_train_segments_per_epoch"])
        batches = [b for b in batches if len(b) >= world]  # every rank needs a share
        bounds = [D.shard_bounds(len(b), rank, world) for b in batches]
        loader = torch.utils.data.DataLoader(self.data.train_set,
                                             batch_sampler=[b[lo:hi] for b, (lo, hi) in zip(batches, bounds)],
                                             num_workers=cfg["num_workers"])
        self.net.train()
        total, count = 0.0, 0
        mix = cfg["mixup"]
        steps = tqdm(zip(loader, batches, bounds), total=len(batches), desc=f"epoch {self.epoch + 1}",
                     file=sys.stderr, leave=False, disable=rank > 0,
                     mininterval=1.0 if sys.stderr.isatty() else 30.0)
        for (x, y), batch, (lo, hi) in steps:
            x, y = x.to(self.device), y.to(self.device)
            masks = None
            if cfg["spec_augment"]["enabled"]:  # drawn for the global batch: same draws on every rank
                masks = draw_masks(len(batch), x.shape[1], x.shape[2], cfg["spec_augment"], self.generator)
                x = apply_masks(x, masks[0][lo:hi], masks[1][lo:hi])
            soft = mix["enabled"] or self.class_weights is not None   # else the plain hard-label loss
            if soft:
                target = onehot = F.one_hot(y, self.num_classes).float()
            if mix["enabled"] and world == 1:
                x, target, _ = mixup_batch(x, onehot, mix["alpha"], self.generator)
            elif mix["enabled"]:
                lam, partners, where = mixup_partners(batch, lo, hi, mix["alpha"], self.generator)
                px, py = self._segments(partners)
                if masks is not None:
                    px = apply_masks(px, masks[0][where], masks[1][where])
                x = lam * x + (1.0 - lam) * px
                target = lam * onehot + (1.0 - lam) * F.one_hot(py, self.num_classes).float()
            with autocast(self.precision, self.device):
                logits = self.net(x)
            if soft:
                loss = soft_cross_entropy(logits.float(), smooth_labels(target, cfg["label_smoothing"]),
                                          self.class_weights)
            else:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg["label_smoothing"])
            self.optimizer.zero_grad(set_to_none=True)
            # DDP averages the ranks' gradients; a share of unequal size is weighted so that the
            # result is the gradient of the mean over the global batch (factor 1 for full batches)
            scale = (hi - lo) * world / len(batch)
            self.scaler.scale(loss if scale == 1 else loss * scale).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema:
                self.ema.update(self.model)
            total += loss.item() * len(y)
            count += len(y)
        total, count = D.all_reduce_sum([total, count])
        return total / max(count, 1)

    def _segments(self, indices):
        """(x, y) of training segments `indices`, on the device (mixup partners of other ranks)."""
        items = [self.data.train_set[i] for i in indices]
        x = torch.stack([it[0] for it in items]).to(self.device)
        y = torch.tensor([it[1] for it in items], dtype=torch.int64, device=self.device)
        return x, y

    def validate(self):
        """(valid_loss, UAR, WA) at utterance level. Under torch.distributed a collective: each
        rank scores every world-th utterance and the posteriors are gathered on all ranks."""
        mine = {u: self.data.valid_segments[u] for u in self.valid_utts[self.rank::self.world]}
        post = posteriors_of_segment_sets(self.eval_model, mine, self.device, self.config["valid_batch_size"],
                                          self.precision)
        if self.world > 1:
            post = {u: p for part in D.all_gather_object(post) for u, p in part.items()}
        probs = np.stack([post[u] for u in self.valid_utts])
        pred = probs.argmax(axis=1)
        loss = float(-np.log(np.maximum(probs[np.arange(len(pred)), self.valid_true], 1e-12)).mean())
        return (loss, uar(self.valid_true, pred, self.num_classes),
                weighted_accuracy(self.valid_true, pred, self.num_classes))

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        """Train (resuming from checkpoints/last.pt if present), then write `done`.

        Under torch.distributed every rank calls it; rank 0 alone writes and logs."""
        main = self.rank == 0
        with self.run_dir.log() as log:
            self.run_dir.resume(self.load_state_dict, log, lambda: f"after epoch {self.epoch}")
            max_epochs = self.config["max_epochs"] if self.lr_schedule is None else len(self.lr_schedule)
            if self.lr_schedule is not None and not self.finished:
                log.info(f"no validation utterances: the given learning rates for {max_epochs} epochs; model.pt = last epoch")
            elif not self.valid_utts and not self.finished:
                log.info("no validation utterances: no model selection or LR schedule; model.pt = last epoch")
            while not self.finished and self.epoch < max_epochs:
                self._one_epoch(log, max_epochs)
            model_path = os.path.join(self.outdir, MODEL_FILE)
            self._broadcast_buffers()
            if main and not os.path.exists(model_path):  # never validated successfully: keep the last model
                save_model(model_path, self.eval_model, dict(self.meta, best_epoch=self.epoch, valid_uar=None))
            best = self.plateau.best if self.plateau.best > -math.inf else float("nan")
            best_epoch = self.plateau.best_epoch if self.valid_utts else self.epoch
            summary = f"best_epoch {best_epoch} valid_uar {best:.4f} epochs {self.epoch}"
            result = {"best_epoch": best_epoch, "valid_uar": best, "epochs": self.epoch}
            if self.best_weights and len(self.best_weights.epochs) > 1:
                result["averaged_valid_uar"] = self._average_best(log, model_path, best_epoch)
                summary += f" averaged_valid_uar {result['averaged_valid_uar']:.4f}"
            self.run_dir.finish(log, summary + "\n")
        return result

    def _average_best(self, log, model_path, best_epoch):
        """Replace model.pt by the mean of the best epochs' weights and validate it (a collective
        under torch.distributed: rank 0 reads the files and sends the mean). Repeated as a whole
        when a run killed here resumes."""
        epochs = self.best_weights.epochs
        averaged = D.broadcast_object(self.best_weights.average() if self.rank == 0 else None)
        self.eval_model.load_state_dict(averaged)
        scores = self.validate()
        if self.rank == 0:
            best_path = os.path.join(self.outdir, BEST_EPOCH_MODEL_FILE)
            if not os.path.exists(best_path):   # absent until the first try: model.pt is still the best epoch's
                atomic_copy(model_path, best_path)
            save_model(model_path, self.eval_model, dict(self.meta, best_epoch=best_epoch, valid_uar=scores[1],
                                                         averaged_epochs=epochs))
            write_averaged(self.outdir, epochs, scores)
        log.info(f"model.pt: the mean of the weights of epochs {' '.join(map(str, epochs))} (the "
                 f"{len(epochs)} best): valid_loss {scores[0]:.4f} valid_uar {scores[1]:.4f} valid_wa {scores[2]:.4f}")
        return scores[1]

    def _broadcast_buffers(self):
        D.broadcast_buffers(self.model)
        if self.ema:
            D.broadcast_buffers(self.ema.module)

    def _one_epoch(self, log, max_epochs):
        start = time.time()
        if self.lr_schedule is not None:
            self._set_lr(self.lr_schedule[self.epoch])
        lr = self.lr
        train_loss = self.train_epoch()
        self.epoch += 1
        every = self.config["valid_every"]
        row = {"epoch": self.epoch, "lr": lr, "train_loss": train_loss,
               "valid_loss": float("nan"), "valid_uar": float("nan"), "valid_wa": float("nan")}
        note, stop = "", False
        main = self.rank == 0
        model_path = os.path.join(self.outdir, MODEL_FILE)
        self._broadcast_buffers()  # per-process BN statistics: rank 0's are the model's
        if self.valid_utts and (self.epoch % every == 0 or self.epoch == max_epochs):
            scores = self.validate()
            decision = None
            if main:
                decision = (scores, self.plateau.step(scores[1], self.epoch, lr), self.plateau.state_dict())
            scores, (improved, new_lr, stop), plateau_state = D.broadcast_object(decision)
            self.plateau.load_state_dict(plateau_state)
            row["valid_loss"], row["valid_uar"], row["valid_wa"] = scores
            if self.best_weights:
                self.best_weights.offer(scores[1], self.epoch, self.eval_model, write=main)
            if improved:
                if main:
                    save_model(model_path, self.eval_model,
                               dict(self.meta, best_epoch=self.epoch, valid_uar=row["valid_uar"]))
                note += " *best*"
            if new_lr != lr:
                self._set_lr(new_lr)
                note += f" lr -> {new_lr:.3g}"
            if stop:
                note += f" early stop ({self.plateau.bad_total} validations without improvement)"
        elif not self.valid_utts and main:
            save_model(model_path, self.eval_model, dict(self.meta, best_epoch=self.epoch, valid_uar=None))
        row["time"] = time.time() - start
        self.history.append(row)
        self.finished = stop or self.epoch >= max_epochs
        self.run_dir.save_checkpoint(self.state_dict())  # state_dict: a collective under torch.distributed
        if main and self.best_weights:
            self.best_weights.prune()
        if main:
            write_history(os.path.join(self.outdir, "history.tsv"), self.history)
            self.curves.update(self.history, final=self.finished)
        log.info(f"epoch {self.epoch}/{max_epochs} lr {lr:.3g} train_loss {train_loss:.4f} "
                 f"valid_loss {row['valid_loss']:.4f} valid_uar {row['valid_uar']:.4f} "
                 f"valid_wa {row['valid_wa']:.4f} time {row['time']:.1f}s{note}")
        self.run_dir.checkpoint_written(self.epoch)
