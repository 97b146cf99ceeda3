"""Time derivatives of a feature sequence (HTK/Kaldi `add-deltas`): the "3-D" log-mel input of
static, delta and delta-delta maps (Chen et al. 2018, 3-D ACRNN).

    d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum_{n=1..N} n^2),   N = `window` (2 as Kaldi),

with the first and last frames repeated beyond the edges; the delta-delta is the same regression
applied to the deltas. Plain additions and multiplications, so the result stays in the input's
precision under autocast.
"""
import torch

from ser.errors import SerError


def regression_deltas(x, window=2):
    """Deltas of x (batch, frames, dim) along the frames, same shape."""
    if window < 1:
        raise SerError(f"delta window must be >= 1, got {window}")
    frames = x.shape[1]
    padded = torch.cat([x[:, :1].expand(-1, window, -1), x, x[:, -1:].expand(-1, window, -1)], dim=1)
    out = torch.zeros_like(x)
    for n in range(1, window + 1):
        out = out + n * (padded[:, window + n:window + n + frames] - padded[:, window - n:window - n + frames])
    return out / (2 * sum(n * n for n in range(1, window + 1)))


def with_deltas(x, order, window=2):
    """(batch, 1 + order, frames, dim): x and its first `order` derivatives as image channels."""
    maps = [x]
    for _ in range(order):
        maps.append(regression_deltas(maps[-1], window))
    return torch.stack(maps, dim=1)
