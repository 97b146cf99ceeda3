"""Model complexity: parameter count and forward FLOPs per segment.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`, which counts matrix products and
convolutions at 2 FLOPs per multiply-add (bias additions, element-wise ops, normalisation and
pooling are not counted). PyTorch has no formula for the fused RNN kernels (`mkldnn_rnn_layer`
on CPU, `_cudnn_rnn` on CUDA), so we add one in the same convention: every weight matrix of the
RNN (input-to-hidden and hidden-to-hidden, all layers and directions) is applied once per time
step and batch element, 2 * steps * batch * rows * cols FLOPs each; the gates' element-wise
products are not counted.
"""
import copy
import math

import torch
from torch.utils.flop_counter import FlopCounterMode


def _tokens(input_shape):
    # (T, B, I), (B, T, I) or packed (sum of lengths, I): every row but the feature axis.
    return math.prod(input_shape[:-1])


def _mkldnn_rnn_layer_flop(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs):
    """One layer, one direction of a CPU (oneDNN) RNN."""
    return 2 * _tokens(input_shape) * (math.prod(w_ih) + math.prod(w_hh))


def _cudnn_rnn_flop(input_shape, weights, *args, out_shape=None, **kwargs):
    """A whole cuDNN RNN: `weights` lists every layer's and direction's matrices and biases."""
    return 2 * _tokens(input_shape) * sum(math.prod(w) for w in weights if len(w) == 2)


def _rnn_formulas():
    formulas = {}
    for name, formula in (("mkldnn_rnn_layer", _mkldnn_rnn_layer_flop), ("_cudnn_rnn", _cudnn_rnn_flop)):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            formulas[op] = formula
    return formulas


def flop_counter():
    """A FlopCounterMode (no printout) that also counts the fused RNN kernels."""
    return FlopCounterMode(display=False, custom_mapping=_rnn_formulas())


def count_parameters(model, trainable_only=True):
    """Number of (trainable) parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model, inputs):
    """Total FLOPs of one forward pass of `model(*inputs)` (no grad, model's current mode)."""
    with torch.no_grad(), flop_counter() as counter:
        model(*inputs)
    return counter.get_total_flops()


def flops_per_segment(model, frames, feat_dim, batch=2, device="cpu"):
    """Forward FLOPs per (frames x feat_dim) segment, in eval mode, on a copy of `model`.

    A batch of `batch` random segments is counted and divided by `batch` (the cost is linear in
    the batch).
    """
    probe = copy.deepcopy(model).to(device).eval()
    x = torch.randn(batch, frames, feat_dim, device=device)
    return count_flops(probe, (x,)) / batch
