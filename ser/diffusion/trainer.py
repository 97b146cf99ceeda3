"""The diffusion training loop: AdamW/Adam, EMA, optional GPU autocast, atomic checkpoints every
`checkpoint_every` steps and bit-identical resumption (issue 5, paper 2 sec. 3.2).

Files in `outdir`: checkpoints/last.pt (every `checkpoint_every` steps and at the end),
history.tsv (one row per `log_every` steps: step, lr, loss, mse, vb, steps_per_s), train.log
(the same rows, also on stderr), model.pt (EMA weights + meta, see ser.diffusion.model_io) and,
last, `done`.

A checkpoint holds the networks, the EMA shadow, the optimizer (and fp16 grad-scaler) state,
the data order (current permutation and position), the running sums of the current log window
and every random state (python, numpy, torch, CUDA, the data-order generator and the generator
of timesteps and noise), so a killed run resumed from it ends with the same weights as a run
that was never interrupted.
"""
import logging
import os
import sys
import time

import torch
from tqdm import tqdm

from ser.data.atomic import atomic_write_text
from ser.diffusion.ema import EMA
from ser.diffusion.model_io import MODEL_FILE, save_diffusion_model
from ser.diffusion.respace import build_diffusion
from ser.errors import SerError
from ser.training.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states

CHECKPOINT = os.path.join("checkpoints", "last.pt")
HISTORY_COLUMNS = ("step", "lr", "loss", "mse", "vb", "steps_per_s")
LOGGER = "ser.train_diffusion"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision, device):
    """The autocast dtype of `precision` on `device` (None: fp32; a CPU always runs fp32)."""
    return AMP_DTYPES.get(precision) if torch.device(device).type == "cuda" else None


class _Log:
    """train.log + stderr handlers on the diffusion logger for the duration of a run."""

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


class DiffusionTrainer:
    """Train `nets` (ModuleDict denoiser + conditioner) on `data` (ser.diffusion.data.MelSegments).

    `config` is the resolved diffusion config; `meta` the model.pt meta (the step is added).
    The caller seeds the global generators before building the networks; the data-order and
    noise generators are seeded here from `seed`. `on_checkpoint(step)` is called after each
    checkpoint is written (tests raise from it to simulate a killed job).
    """

    def __init__(self, nets, data, config, outdir, device, seed, meta, on_checkpoint=None, notes=()):
        self.device = torch.device(device)
        self.nets = nets.to(self.device)
        self.config, self.outdir, self.meta = config, outdir, dict(meta)
        self.on_checkpoint, self.notes = on_checkpoint, list(notes)
        self.diffusion = build_diffusion(config["process"])
        self.segments = torch.from_numpy(data.segments).to(self.device)
        self.conditions = list(data.conditions)
        opt = config["optim"]
        params = [p for p in self.nets.parameters() if p.requires_grad]
        cls = torch.optim.AdamW if opt["type"] == "adamw" else torch.optim.Adam
        self.optimizer = cls(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]),
                             weight_decay=opt["weight_decay"])
        self.ema = EMA(self.nets, decay=config["ema"]["decay"], warmup=config["ema"]["warmup"])
        self.amp_dtype = autocast_dtype(config["precision"], self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.order_gen = torch.Generator().manual_seed(seed)
        self.noise_gen = torch.Generator(self.device).manual_seed(seed + 1)
        self.step, self.perm, self.pos = 0, None, 0
        self.window = {"loss": 0.0, "mse": 0.0, "vb": 0.0, "n": 0, "time": 0.0}
        self.history = []

    # --- state -------------------------------------------------------------------------------
    def state_dict(self):
        return {"step": self.step, "nets": self.nets.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "perm": self.perm, "pos": self.pos, "window": dict(self.window), "history": self.history,
                "rng": rng_states(self.order_gen), "noise_gen": self.noise_gen.get_state()}

    def load_state_dict(self, state):
        self.nets.load_state_dict(state["nets"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_states(state["rng"], self.order_gen)
        self.noise_gen.set_state(state["noise_gen"])
        self.step, self.perm, self.pos = state["step"], state["perm"], state["pos"]
        self.window, self.history = dict(state["window"]), list(state["history"])

    # --- one step ----------------------------------------------------------------------------
    def next_batch(self):
        """Indices of the next batch: consecutive slices of per-epoch random permutations."""
        want, idx = self.config["batch_size"], []
        while len(idx) < want:
            if self.perm is None or self.pos >= len(self.perm):
                self.perm, self.pos = torch.randperm(len(self.segments), generator=self.order_gen), 0
            take = self.perm[self.pos:self.pos + want - len(idx)].tolist()
            idx += take
            self.pos += len(take)
        return idx

    def lr_at(self, step):
        opt = self.config["optim"]
        warm = opt["warmup_steps"]
        return opt["lr"] * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)

    def train_step(self):
        """One optimiser step; returns the (loss, mse, vb) batch means."""
        idx = self.next_batch()
        x0 = self.segments[idx]
        texts = [self.conditions[i] for i in idx]
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.nets.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            cond = self.nets["conditioner"](texts)
            t, w = self.diffusion.sample_timesteps(len(idx), self.device, generator=self.noise_gen)
            losses = self.diffusion.training_losses(self.nets["denoiser"], x0, t, cond, generator=self.noise_gen)
            loss = (losses["loss"] * w).mean()
        if not torch.isfinite(loss):
            raise SerError(f"diffusion training diverged at step {self.step + 1} (loss {loss.item()}); "
                           f"lower optim.lr or set optim.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config["optim"]["grad_clip"]
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.ema.update(self.nets)
        self.step += 1
        return loss.item(), losses["mse"].mean().item(), losses["vb"].mean().item()

    # --- outputs -----------------------------------------------------------------------------
    def ema_state_dict(self):
        """The networks' state with every averaged parameter replaced by its EMA value."""
        state = {k: v.detach().clone() for k, v in self.nets.state_dict().items()}
        for name, shadow in self.ema.shadow.items():
            state[name] = shadow.to(dtype=state[name].dtype).clone()
        return state

    def _write_history(self):
        def fmt(k, v):
            return str(v) if k == "step" else f"{v:.6g}"
        rows = ["\t".join(fmt(k, r[k]) for k in HISTORY_COLUMNS) for r in self.history]
        atomic_write_text(os.path.join(self.outdir, "history.tsv"),
                          "\t".join(HISTORY_COLUMNS) + "\n" + "".join(r + "\n" for r in rows))

    def _log_window(self, log):
        w = self.window
        row = {"step": self.step, "lr": self.lr_at(self.step - 1), "loss": w["loss"] / w["n"],
               "mse": w["mse"] / w["n"], "vb": w["vb"] / w["n"], "steps_per_s": w["n"] / max(w["time"], 1e-9)}
        self.history.append(row)
        self._write_history()
        log.info(f"step {self.step}/{self.config['max_steps']} lr {row['lr']:.3g} loss {row['loss']:.4f} "
                 f"mse {row['mse']:.4f} vb {row['vb']:.4f} {row['steps_per_s']:.2f} steps/s")
        self.window = {"loss": 0.0, "mse": 0.0, "vb": 0.0, "n": 0, "time": 0.0}

    def _checkpoint(self, log):
        save_checkpoint(os.path.join(self.outdir, CHECKPOINT), self.state_dict())
        log.info(f"checkpoint at step {self.step}")
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step)

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        """Train to max_steps (resuming from checkpoints/last.pt), write model.pt, then `done`."""
        os.makedirs(os.path.join(self.outdir, "checkpoints"), exist_ok=True)
        cfg = self.config
        with _Log(self.outdir) as log:
            for note in self.notes:
                log.info(note)
            ckpt = os.path.join(self.outdir, CHECKPOINT)
            if os.path.exists(ckpt):
                self.load_state_dict(load_checkpoint(ckpt))
                log.info(f"resumed from {ckpt} at step {self.step}")
            total = cfg["max_steps"]
            bar = tqdm(total=total, initial=self.step, desc="diffusion", unit="step", file=sys.stderr,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, leave=False)
            while self.step < total:
                start = time.time()
                loss, mse, vb = self.train_step()
                w = self.window
                w["loss"] += loss
                w["mse"] += mse
                w["vb"] += vb
                w["n"] += 1
                w["time"] += time.time() - start
                bar.update(1)
                if self.step % cfg["log_every"] == 0 or self.step == total:
                    self._log_window(log)
                if self.step % cfg["checkpoint_every"] == 0 or self.step == total:
                    self._checkpoint(log)
            bar.close()
            meta = dict(self.meta, step=self.step)
            save_diffusion_model(os.path.join(self.outdir, MODEL_FILE), self.ema_state_dict(), meta)
            last = self.history[-1] if self.history else {}
            summary = f"steps {self.step} loss {last.get('loss', float('nan')):.4f}\n"
            log.info("finished: " + summary.strip())
            atomic_write_text(os.path.join(self.outdir, "done"), summary)
        return {"steps": self.step}
