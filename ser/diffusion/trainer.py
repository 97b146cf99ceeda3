"""The diffusion training loop: AdamW/Adam, EMA, `precision` autocast (fp32 | bf16 | fp16, see
ser.runtime.precision; fp16 on CUDA only, with a gradient scaler), atomic checkpoints every
`checkpoint_every` steps and bit-identical resumption (paper 2 sec. 3.2).

Files in `outdir`: checkpoints/last.pt (every `checkpoint_every` steps and at the end),
history.tsv (one row per `log_every` steps: step, lr, loss, mse, vb, steps_per_s), train.log
(the same rows, also on stderr), model.pt (EMA weights + meta, see ser.diffusion.model_io; with
`guidance.snapshot_step` > 0 also the EMA weights of that step, the autoguidance guide),
diagnostics/ (ser.diffusion.diagnostics, of the EMA weights) and, last, `done`.

Options of the config honoured here: `segment.crop` (random crops, their offsets drawn from the
noise generator after the noise, and given to the denoiser as `frame_offset`) and `normalize`
(per-band statistics of the training segments, ser.diffusion.normalize, added to the meta).

A checkpoint holds the networks, the EMA shadow, the optimizer (and fp16 grad-scaler) state,
the data order (current permutation and position), the running sums of the current log window
and every random state (python, numpy, torch, CUDA, the data-order generator and the generator
of timesteps and noise), so a killed run resumed from it ends with the same weights as a run
that was never interrupted.

Data-parallel training (several processes started by torchrun through utils/launch_train.sh
--module ser.bin.train_diffusion, see ser/runtime/distributed.py): every rank draws the same
GLOBAL batch of `batch_size` segments, its timesteps and its noise from its copy of the shared
generators and trains on its contiguous share (`batch_size` must divide by the number of
processes); DDP averages the gradients, so N processes compute what one process computes on the
same global batch (the denoiser has GroupNorm only, no batch statistics; dropout masks come from
each rank's own stream, seeded per rank). The EMA is updated from the unwrapped networks, whose
weights are the same on every rank after each step. The logged losses are means over the global
batch. Rank 0 alone writes files and decides whether to resume; the checkpoint (same format as a
single-process one) adds "rng_ranks", every rank's random states, so that a run resumed with the
same number of processes continues bit-identically. Tests simulate a killed job with
SER_TRAIN_KILL_AFTER_STEP=<step> (exit status 75 after that step's checkpoint).
"""
import math
import os
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

from ser.data.atomic import atomic_write_text
from ser.diffusion.ema import EMA
from ser.diffusion.model_io import save_diffusion_model
from ser.diffusion.normalize import BandNorm
from ser.diffusion.respace import build_diffusion
from ser.errors import SerError
from ser.runtime import distributed as D
from ser.runtime import precision as P
from ser.runtime.checkpoint import kill_hook, rng_states, seed_rank_streams
from ser.runtime.run_dir import RunDir
from ser.runtime.torch_files import MODEL_FILE
from ser.training.curves import CurvesWriter

HISTORY_COLUMNS = ("step", "lr", "loss", "mse", "vb", "steps_per_s")
LOGGER = "ser.train_diffusion"
# Tests: exit (status ser.runtime.checkpoint.KILL_STATUS) after the checkpoint of this step, as a
# killed job would.
KILL_ENV = "SER_TRAIN_KILL_AFTER_STEP"


class DiffusionLoss(nn.Module):
    """The per-sample hybrid losses of a batch as one module call, so that DDP (which
    synchronises gradients through its wrapped module's forward) can wrap conditioner and
    denoiser together. `nets` is the ModuleDict(denoiser, conditioner); its state dict is saved."""

    def __init__(self, nets, diffusion):
        super().__init__()
        self.nets = nets
        self.diffusion = diffusion

    def forward(self, x0, texts, t, noise, frame_offset=None):
        cond = self.nets["conditioner"](texts)
        kwargs = None if frame_offset is None else {"frame_offset": frame_offset}
        return self.diffusion.training_losses(self.nets["denoiser"], x0, t, cond, noise=noise, model_kwargs=kwargs)


class DiffusionTrainer:
    """Train `nets` (ModuleDict denoiser + conditioner) on `data` (ser.diffusion.data.MelSegments).

    `config` is the resolved diffusion config; `meta` the model.pt meta (the step is added).
    The caller seeds the global generators before building the networks; the data-order and
    noise generators are seeded here from `seed`. `on_checkpoint(step)` is called after each
    checkpoint is written (tests raise from it to simulate a killed job; default: the
    SER_TRAIN_KILL_AFTER_STEP hook).

    Under torch.distributed (distributed.setup() joined a process group) `device` is this
    rank's device and the networks are trained in DDP (see the module docstring).
    """

    def __init__(self, nets, data, config, outdir, device, seed, meta, on_checkpoint=None, notes=(),
                 diagnostics_data=None):
        self.device = torch.device(device)
        P.check_precision(config["precision"], self.device)
        self.world, self.rank = D.world_size(), D.rank()
        D.per_process_batch(config["batch_size"], self.world)  # SerError unless it divides
        self.nets = nets.to(self.device)           # the module: state dicts, EMA, model.pt
        self.diffusion = build_diffusion(config["process"])
        # what is trained: DDP under torch.distributed (it copies rank 0's weights to every rank)
        self.net = D.wrap_ddp(DiffusionLoss(self.nets, self.diffusion), self.device)
        seed_rank_streams(seed)
        self.config, self.outdir, self.meta = config, outdir, dict(meta)
        self.curves = CurvesWriter(outdir, "diffusion", config.get("tensorboard", False))
        self.seed = seed
        # log, checkpoints and done; on_checkpoint is called after each checkpoint
        self.run_dir = RunDir(outdir, LOGGER, on_checkpoint if on_checkpoint is not None else kill_hook(KILL_ENV),
                              notes)
        self.norm = None
        if config.get("normalize", {}).get("type", "none") == "band":
            self.norm = BandNorm.from_segments(data.segments, config["normalize"]["scale"])
            self.diffusion.set_clip_bounds(*self.norm.bounds())
            self.meta["normalize"] = self.norm.to_meta()
        self.segments = torch.from_numpy(data.segments).to(self.device)
        if self.norm is not None:
            self.segments = self.norm.forward(self.segments)
        self.crop = config["segment"].get("crop", 0)
        if self.crop >= self.segments.shape[2]:
            self.crop = 0                          # a crop of the whole segment is no crop
        self.diagnostics_data = diagnostics_data
        self.conditions = list(data.conditions)
        opt = config["optim"]
        params = [p for p in self.nets.parameters() if p.requires_grad]
        cls = torch.optim.AdamW if opt["type"] == "adamw" else torch.optim.Adam
        # fused: one vectorised kernel over all parameters (2.6x faster than the per-parameter
        # loop for the CPU denoiser's 123 tensors); same update rule
        self.optimizer = cls(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]),
                             weight_decay=opt["weight_decay"], fused=self.device.type in ("cpu", "cuda"))
        self.ema = EMA(self.nets, decay=config["ema"]["decay"], warmup=config["ema"]["warmup"])
        self.precision = config["precision"]
        self.scaler = P.grad_scaler(config["precision"], self.device)
        self.order_gen = torch.Generator().manual_seed(seed)
        self.noise_gen = torch.Generator(self.device).manual_seed(seed + 1)
        self.step, self.perm, self.pos = 0, None, 0
        self.guide_step = config.get("guidance", {}).get("snapshot_step", 0)
        self.guide_state = None                    # the EMA weights at guide_step, once reached
        self.window = {"loss": 0.0, "mse": 0.0, "vb": 0.0, "n": 0, "time": 0.0}
        self.history = []
        self.run_dir.note_processes(config["batch_size"])

    # --- state -------------------------------------------------------------------------------
    def state_dict(self):
        """The checkpoint: networks, EMA, optimizer, scaler, data position, log window, history,
        random states and the noise generator (a collective under torch.distributed)."""
        return self.run_dir.add_rank_states({
            "step": self.step, "nets": self.nets.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "perm": self.perm, "pos": self.pos, "window": dict(self.window), "history": self.history,
            "guide": self.guide_state, "rng": rng_states(self.order_gen), "noise_gen": self.noise_gen.get_state()})

    def load_state_dict(self, state):
        """Continue from checkpoint `state` (see RunDir.restore_rng for the note it returns)."""
        self.nets.load_state_dict(state["nets"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.noise_gen.set_state(state["noise_gen"])   # shared: the same on every rank
        self.step, self.perm, self.pos = state["step"], state["perm"], state["pos"]
        self.window, self.history = dict(state["window"]), list(state["history"])
        self.guide_state = state.get("guide")
        # the shared generators (data order, timesteps, noise) continue on every rank; other
        # ranks' dropout streams are re-seeded from the step when the number of processes changed
        return self.run_dir.restore_rng(state, self.order_gen, self.step, "data order, timesteps and noise")

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

    def global_noise(self, n):
        """(t, w, noise, crop offsets or None) of a global batch of n segments, drawn from the
        shared noise generator in the order of a single process (timesteps, noise, offsets);
        every rank slices its share."""
        t, w = self.diffusion.sample_timesteps(n, self.device, generator=self.noise_gen)
        length = self.crop or self.segments.shape[2]
        shape = (n, self.segments.shape[1], length)
        noise = torch.randn(shape, generator=self.noise_gen, device=self.noise_gen.device,
                            dtype=self.segments.dtype).to(self.device)
        offsets = None
        if self.crop:
            offsets = torch.randint(0, self.segments.shape[2] - self.crop + 1, (n,), generator=self.noise_gen,
                                    device=self.noise_gen.device).to(self.device)
        return t, w, noise, offsets

    def crop_segments(self, x0, offsets):
        """x0[b, :, offsets[b]:offsets[b] + crop] for every b."""
        index = offsets[:, None] + torch.arange(self.crop, device=x0.device)[None]
        return x0.gather(2, index[:, None, :].expand(-1, x0.shape[1], -1))

    def train_step(self):
        """One optimiser step; returns the (loss, mse, vb) means over the global batch."""
        batch = self.next_batch()
        t, w, noise, offsets = self.global_noise(len(batch))
        lo, hi = D.shard_bounds(len(batch), self.rank, self.world)
        idx = batch[lo:hi]
        x0 = self.segments[idx]
        if offsets is not None:
            offsets = offsets[lo:hi]
            x0 = self.crop_segments(x0, offsets)
        texts = [self.conditions[i] for i in idx]
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.net.train()
        with P.autocast(self.precision, self.device):
            losses = self.net(x0, texts, t[lo:hi], noise[lo:hi], offsets)
            loss = (losses["loss"] * w[lo:hi]).mean()
        # the shares are equal (batch_size divides by the world size): the global means are the
        # means of the shares' means; reduced before backward, so that every rank sees a divergence
        values = D.all_reduce_mean([loss.item(), losses["mse"].mean().item(), losses["vb"].mean().item()])
        if not all(map(math.isfinite, values)):
            raise SerError(f"diffusion training diverged at step {self.step + 1} (loss {values[0]}); "
                           f"lower optim.lr or set optim.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config["optim"]["grad_clip"]
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.ema.update(self.nets)   # the weights are the same on every rank after the step
        self.step += 1
        if self.step == self.guide_step:
            self.guide_state = self.ema_state_dict()
        return tuple(values)

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
        self.history.append(row)   # on every rank: the same state everywhere
        if self.rank == 0:
            self._write_history()
            self.curves.update(self.history, final=self.step >= self.config["max_steps"])
        log.info(f"step {self.step}/{self.config['max_steps']} lr {row['lr']:.3g} loss {row['loss']:.4f} "
                 f"mse {row['mse']:.4f} vb {row['vb']:.4f} {row['steps_per_s']:.2f} steps/s")
        self.window = {"loss": 0.0, "mse": 0.0, "vb": 0.0, "n": 0, "time": 0.0}

    def _checkpoint(self, log):
        self.run_dir.save_checkpoint(self.state_dict())   # state_dict: a collective under torch.distributed
        log.info(f"checkpoint at step {self.step}")
        self.run_dir.checkpoint_written(self.step)

    def write_diagnostics(self, log, meta):
        """diagnostics/ of the EMA weights (on an inference copy: training state is untouched)."""
        import copy

        from ser.diffusion.diagnostics import run_diagnostics
        nets = copy.deepcopy(self.nets)
        nets.load_state_dict(self.ema_state_dict())
        if self.guide_state is not None:
            guide = copy.deepcopy(self.nets)
            guide.load_state_dict(self.guide_state)
            nets["guide"] = guide
        summary = run_diagnostics(nets.eval(), meta, self.diagnostics_data, os.path.join(self.outdir, "diagnostics"),
                                  self.device, self.seed)
        log.info("diagnostics: " + " ".join(f"{k} {v:.4g}" for k, v in summary.items()))

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        """Train to max_steps (resuming from checkpoints/last.pt), write model.pt, then `done`.

        Under torch.distributed every rank calls it; rank 0 alone writes and logs."""
        main = self.rank == 0
        cfg = self.config
        with self.run_dir.log() as log:
            self.run_dir.resume(self.load_state_dict, log, lambda: f"at step {self.step}")
            total = cfg["max_steps"]
            bar = tqdm(total=total, initial=self.step, desc="diffusion", unit="step", file=sys.stderr,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, leave=False, disable=not main)
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
            if main:
                meta = dict(self.meta, step=self.step)
                save_diffusion_model(os.path.join(self.outdir, MODEL_FILE), self.ema_state_dict(), meta,
                                     self.guide_state)
                if self.diagnostics_data is not None:
                    self.write_diagnostics(log, meta)
            last = self.history[-1] if self.history else {}
            # model.pt and done are written before any rank leaves
            self.run_dir.finish(log, f"steps {self.step} loss {last.get('loss', float('nan')):.4f}\n")
        return {"steps": self.step}
