"""Pieces shared by all SER models: the base class (options, input checks) and sequence pooling.

Every model maps a float tensor (batch, frames, feat_dim) to logits (batch, num_classes);
softmax belongs to the loss and the scoring, not to the model.
"""
import torch
from torch import nn

from ser.errors import SerError
from ser.features.deltas import with_deltas
from ser.models.options import resolve_options


def pooled_len(n, kernel, stride, padding=0):
    """Output length of a conv/pool along one axis (floor mode, dilation 1)."""
    return (n + 2 * padding - kernel) // stride + 1


class SerModel(nn.Module):
    """Base class: resolves options against `DEFAULTS`/`CHOICES` and checks inputs.

    Subclasses set `NAME`, `DEFAULTS` (option -> default, which also fixes its type), optionally
    `CHOICES`, and call `super().__init__(num_classes, feat_dim, options)` first; the merged
    options are then in `self.conf`. They set `self.min_frames` to the shortest segment the
    architecture accepts.
    """

    NAME = "model"
    DEFAULTS = {}
    CHOICES = {}

    def __init__(self, num_classes, feat_dim, options):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise SerError(f"model '{self.NAME}': num_classes must be an integer >= 2, got {num_classes!r}")
        if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 8:
            raise SerError(f"model '{self.NAME}': feat_dim must be an integer >= 8, got {feat_dim!r}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.conf = resolve_options(self.NAME, self.DEFAULTS, options, self.CHOICES)
        self.min_frames = 1

    def check_input(self, x):
        """SerError unless x is (batch, frames >= min_frames, feat_dim)."""
        if x.dim() != 3 or x.shape[2] != self.feat_dim:
            raise SerError(f"model '{self.NAME}': expected input (batch, frames, {self.feat_dim}), "
                           f"got {tuple(x.shape)}")
        if x.shape[1] < self.min_frames:
            raise SerError(f"model '{self.NAME}': segment of {x.shape[1]} frames is shorter than the "
                           f"minimum {self.min_frames}")

    def extra_repr(self):
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, conf={self.conf}"


class SequencePool(nn.Module):
    """Summarise an RNN output (batch, time, dim) as (batch, dim): last step or time average.

    For a bidirectional RNN, "last" takes the forward direction's last step and the backward
    direction's first step (each direction's final state after reading the whole sequence).
    """

    def __init__(self, mode, bidirectional=False):
        super().__init__()
        self.mode = mode
        self.bidirectional = bidirectional

    def forward(self, seq):
        if self.mode == "mean":
            return seq.mean(dim=1)
        if not self.bidirectional:
            return seq[:, -1]
        half = seq.shape[2] // 2
        return torch.cat([seq[:, -1, :half], seq[:, 0, half:]], dim=1)

    def extra_repr(self):
        return f"mode={self.mode!r}, bidirectional={self.bidirectional}"


# The option of the 2-D conv models that adds time derivatives as input maps (HTK/Kaldi deltas,
# ser.features.deltas): 0 the static map alone (the papers), 1 with deltas, 2 with delta-deltas too.
DELTAS_DEFAULT = {"deltas": 0}
MAX_DELTAS = 2


def input_image(model, x):
    """(batch, frames, feat_dim) -> the (batch, 1 + deltas, frames, feat_dim) image a 2-D conv
    model reads (option `deltas` of its conf)."""
    return with_deltas(x, model.conf["deltas"])


def check_deltas(model):
    """SerError unless the model's `deltas` option is 0..MAX_DELTAS; returns the input channels."""
    if model.conf["deltas"] > MAX_DELTAS:
        raise SerError(f"model '{model.NAME}': option 'deltas' must be 0, 1 or 2, got {model.conf['deltas']}")
    return 1 + model.conf["deltas"]


def image_to_sequence(fmap):
    """(batch, channels, time, freq) feature map -> (batch, time, channels*freq) sequence."""
    b, c, t, f = fmap.shape
    return fmap.permute(0, 2, 1, 3).reshape(b, t, c * f)


def bn_relu_max_pool(channels, pool, kernel=None, padding=0):
    """The layers of BN -> ReLU -> MaxPool(kernel, stride `pool`, `padding`) on `channels` maps
    (no pooling when pool is 1), in the order [BN, MaxPool, ReLU].

    ReLU is monotone, so it commutes with a window maximum, and so does its gradient (which
    reaches a window's maximum if that is positive and nothing otherwise): the same function and
    gradients, but the ReLU and its backward touch 1/pool^2 of the elements, which makes a
    paper-size CNN training step about 1.2x faster on a CPU. Neither layer has parameters, so
    state dicts are those of the textbook order.
    """
    layers = [nn.BatchNorm2d(channels)]
    if pool > 1:
        layers.append(nn.MaxPool2d(kernel or pool, stride=pool, padding=padding))
    return layers + [nn.ReLU(inplace=True)]
