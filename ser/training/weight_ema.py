"""Exponential moving average of a model's weights (Polyak averaging), validated and saved in place
of the trained weights (config `weight_ema`).

Why: with one validation speaker per fold the validation UAR of consecutive epochs swings by
±0.1-0.15 even late in training, so the best epoch (model.pt) and the plateau rule follow that
noise. The average of the last ~1/(1 - decay) optimizer steps moves smoothly. Batch-norm running
statistics are averaged like the weights; integer buffers (batches seen) are copied.

The decay of update n (counted from 1) is min(decay, (1 + n) / (10 + n)), as in TensorFlow's
ExponentialMovingAverage with num_updates: early updates weigh the recent weights more, so the
average does not stay near the random initial weights for the first ~1/(1 - decay) steps.
"""
import copy
import itertools

import torch


def effective_decay(decay, updates):
    """The decay of update number `updates` (1 for the first)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightEma:
    """An averaged copy of `model` (same structure, memory format and device); `module` is it."""

    def __init__(self, model, decay):
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.module.eval()
        self.updates = 0

    @staticmethod
    def _tensors(module):
        return list(itertools.chain(module.parameters(), module.buffers()))

    @torch.no_grad()
    def update(self, model):
        """Move the average towards `model`'s current weights (after an optimizer step)."""
        self.updates += 1
        weight = 1.0 - effective_decay(self.decay, self.updates)
        averaged, current = [], []
        for avg, cur in zip(self._tensors(self.module), self._tensors(model)):
            if avg.is_floating_point():
                averaged.append(avg)
                current.append(cur.detach())
            else:
                avg.copy_(cur)
        torch._foreach_lerp_(averaged, current, weight)

    def state_dict(self):
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
