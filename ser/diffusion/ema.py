"""Exponential moving average of a model's weights, used for sampling (as in DDPM/IDDPM).

The shadow copy lives in float32 on the model's device and is saved/loaded with
`state_dict`/`load_state_dict`, so a checkpoint holds {"model": ..., "ema": ema.state_dict()}.
Only floating-point parameters are averaged; buffers are copied as they are.
"""
import torch

from ser.errors import SerError


class EMA:
    """shadow ← decay·shadow + (1 − decay)·param after each optimiser step.

    With `warmup=True` the decay used at update n is min(decay, (1 + n)/(10 + n)), so early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, model, decay=0.9999, warmup=False):
        if not 0.0 <= decay <= 1.0:
            raise SerError(f"ema: decay must be in [0, 1], got {decay!r}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow = {name: p.detach().float().clone()
                       for name, p in model.named_parameters() if p.dtype.is_floating_point}

    def current_decay(self):
        if self.warmup:
            return min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        return self.decay

    @torch.no_grad()
    def update(self, model):
        """Fold the model's current parameters into the average."""
        decay = self.current_decay()
        params = dict(model.named_parameters())
        shadows, values = [], []
        for name, shadow in self.shadow.items():
            p = params[name].detach()
            if p.device != shadow.device:
                self.shadow[name] = shadow = shadow.to(p.device)
            shadows.append(shadow)
            values.append(p.float())
        # one multi-tensor op per update instead of two kernel launches per parameter
        torch._foreach_mul_(shadows, decay)
        torch._foreach_add_(shadows, values, alpha=1.0 - decay)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model):
        """Overwrite the model's parameters with the averaged ones (e.g. an inference copy)."""
        params = dict(model.named_parameters())
        missing = [n for n in self.shadow if n not in params]
        if missing:
            raise SerError(f"ema: model lacks averaged parameter(s) {', '.join(missing[:5])}")
        for name, shadow in self.shadow.items():
            params[name].copy_(shadow.to(device=params[name].device, dtype=params[name].dtype))

    def to(self, device):
        self.shadow = {n: s.to(device) for n, s in self.shadow.items()}
        return self

    def state_dict(self):
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": {n: s.clone() for n, s in self.shadow.items()}}

    def load_state_dict(self, state):
        names = set(state["shadow"])
        if names != set(self.shadow):
            diff = sorted(names.symmetric_difference(self.shadow))
            raise SerError(f"ema: checkpoint parameters differ from the model's: {', '.join(diff[:5])}")
        self.decay = float(state["decay"])
        self.warmup = bool(state.get("warmup", False))
        self.num_updates = int(state["num_updates"])
        for name, value in state["shadow"].items():
            self.shadow[name] = value.detach().float().to(self.shadow[name].device).clone()
