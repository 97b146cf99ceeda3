"""The ε/variance network of the diffusion model: 1-D convolutions over mel frames.

Architecture (paper §3.2; choices the paper leaves open are marked *):
  x (B, n_mels, F) ++ cond (B, cond_dim) broadcast over frames      (concatenated channels)
    [++ pos_channels sinusoids of the frame index*]
  → Conv1d(n_mels + cond_dim → channels, kernel)
  → `num_layers` res-layers  h ← h + Conv1d(SiLU(GroupNorm(h) + e))  (paper: 8, 1536 filters)
  → multi-head self-attention over frames, residual
  → `num_res_blocks` more res-layers                                 (paper: 3)
  → GroupNorm → SiLU → Conv1d(channels → 2·n_mels), zero-initialised* (ε and v)
where e is a per-layer linear projection of the embedding
  emb = MLP(sinusoidal(t)) [+ Linear(cond) if cond_add]*.
So the time embedding is ADDED in every res-layer* (not concatenated), and the condition is
concatenated to the input (paper) and, with cond_add, also added to the embedding*.
GroupNorm, attention softmax and the timestep embedding run in float32 under autocast.

Frame-index channels (`pos_channels` > 0, not in the paper): without them the network is
translation-equivariant (convolutions, attention without positions, a condition broadcast
over frames), so it cannot learn WHERE a segment's padded silence starts. The channels are
sin/cos of the absolute frame index within the 256-frame segment (`frame_offset` + 0..F-1 for
a training crop) at pos_channels/2 periods spaced geometrically from 4 to 1024 frames.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from ser.errors import SerError
from ser.models.options import require_positive, resolve_options

# Small network for CPU runs and tests (default).
CPU_PRESET = {"n_mels": 80, "channels": 192, "num_layers": 8, "num_res_blocks": 3, "kernel_size": 3,
              "heads": 4, "time_dim": 128, "cond_dim": 128, "cond_add": True, "norm_groups": 32,
              "dropout": 0.0, "pos_channels": 0}
# Sizes of the paper: 1536 filters, 8 + 3 res-layers; heads/time_dim/cond_dim are not given
# there (our choice: 8 heads of 192, 256-d embeddings).
PAPER_PRESET = {**CPU_PRESET, "channels": 1536, "heads": 8, "time_dim": 256, "cond_dim": 256}
PRESETS = {"cpu": CPU_PRESET, "paper": PAPER_PRESET}


POS_MIN_PERIOD, POS_MAX_PERIOD = 4.0, 1024.0


def frame_position_channels(channels, frames, offset=None, batch=1, device=None):
    """(B, channels, frames) float32 sin/cos of frame indices offset[b] + 0..frames-1."""
    half = channels // 2
    if offset is None:
        offset = torch.zeros(batch, dtype=torch.long, device=device)
    pos = offset.float()[:, None] + torch.arange(frames, dtype=torch.float32, device=offset.device)[None]
    ratio = torch.arange(half, dtype=torch.float32, device=offset.device) / max(half - 1, 1)
    periods = POS_MIN_PERIOD * (POS_MAX_PERIOD / POS_MIN_PERIOD) ** ratio
    args = 2 * math.pi * pos[:, None, :] / periods[None, :, None]              # (B, half, F)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding (B, dim) of integer or real timesteps t (B,), in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 (statistics overflow/underflow in half precision)."""

    def forward(self, x):
        with torch.autocast(device_type=x.device.type, enabled=False):
            return super().forward(x.float()).to(x.dtype)


def _groups(channels, max_groups):
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


class ResLayer(nn.Module):
    """h + Conv1d(dropout(SiLU(GroupNorm(h) + proj(emb))))."""

    def __init__(self, channels, emb_dim, kernel_size, groups, dropout):
        super().__init__()
        self.norm = GroupNorm32(groups, channels)
        self.emb = nn.Linear(emb_dim, channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h, emb):
        y = self.norm(h) + self.emb(emb)[:, :, None].to(h.dtype)
        return h + self.conv(self.dropout(F.silu(y)))


class FrameSelfAttention(nn.Module):
    """Multi-head self-attention over frames (B, C, F), residual; scores/softmax in float32."""

    def __init__(self, channels, heads, groups):
        super().__init__()
        self.heads = heads
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, h):
        b, c, f = h.shape
        qkv = self.qkv(self.norm(h))                                   # (B, 3C, F)
        q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, f).unbind(1)
        with torch.autocast(device_type=h.device.type, enabled=False):
            # (B, heads, F, d): attention over frames
            q, k, v = (z.float().transpose(-1, -2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v)
        a = a.transpose(-1, -2).reshape(b, c, f).to(qkv.dtype)
        return h + self.proj(a)


class MelDenoiser(nn.Module):
    """Predicts ε and the variance interpolation v for a noisy mel segment.

    Args:
        conf: dict of options overriding `CPU_PRESET` (keys: n_mels, channels, num_layers,
            num_res_blocks, kernel_size, heads, time_dim, cond_dim, cond_add, norm_groups,
            dropout, pos_channels), or the name of a preset ('cpu', 'paper'), or a dict with "preset": name.
    forward(x (B, n_mels, F), t (B,), cond (B, cond_dim) or None when cond_dim = 0,
            frame_offset (B,) long or None: index of x's first frame in its segment)
        → (B, 2·n_mels, F): the prediction (ε, v or x0, see GaussianDiffusion) then the variance v.
    """

    def __init__(self, conf=None):
        super().__init__()
        if isinstance(conf, str):
            conf = {"preset": conf}
        conf = dict(conf or {})
        preset = conf.pop("preset", "cpu")
        if preset not in PRESETS:
            raise SerError(f"denoiser: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        self.conf = c = resolve_options("denoiser", PRESETS[preset], conf)
        require_positive("denoiser", c, "n_mels", "channels", "kernel_size", "heads", "time_dim", "norm_groups")
        if c["kernel_size"] % 2 == 0:
            raise SerError(f"denoiser: kernel_size must be odd (same-length output), got {c['kernel_size']}")
        if c["channels"] % c["heads"]:
            raise SerError(f"denoiser: channels ({c['channels']}) must be divisible by heads ({c['heads']})")
        if c["pos_channels"] < 0 or c["pos_channels"] % 2:
            raise SerError(f"denoiser: pos_channels must be an even number >= 0, got {c['pos_channels']}")
        if not 0.0 <= c["dropout"] < 1.0:
            raise SerError(f"denoiser: dropout must be in [0, 1), got {c['dropout']}")
        ch, k, emb_dim = c["channels"], c["kernel_size"], c["time_dim"]
        groups = _groups(ch, c["norm_groups"])
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), nn.SiLU(), nn.Linear(4 * emb_dim, emb_dim))
        self.cond_emb = nn.Linear(c["cond_dim"], emb_dim) if c["cond_add"] and c["cond_dim"] else None
        self.conv_in = nn.Conv1d(c["n_mels"] + c["cond_dim"] + c["pos_channels"], ch, k, padding=k // 2)
        self.layers = nn.ModuleList(ResLayer(ch, emb_dim, k, groups, c["dropout"]) for _ in range(c["num_layers"]))
        self.attention = FrameSelfAttention(ch, c["heads"], groups)
        self.res_blocks = nn.ModuleList(ResLayer(ch, emb_dim, k, groups, c["dropout"])
                                        for _ in range(c["num_res_blocks"]))
        self.norm_out = GroupNorm32(groups, ch)
        self.conv_out = nn.Conv1d(ch, 2 * c["n_mels"], k, padding=k // 2)
        # Zero output at init: ε̂ = 0 and v = 0 (variance halfway between β̃ and β), a stable start.
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t, cond=None, frame_offset=None):
        c = self.conf
        if x.dim() != 3 or x.shape[1] != c["n_mels"]:
            raise SerError(f"denoiser: expected input (batch, {c['n_mels']}, frames), got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise SerError(f"denoiser: expected timesteps of shape ({x.shape[0]},), got {tuple(t.shape)}")
        emb = self.time_mlp(timestep_embedding(t, c["time_dim"]))
        if c["cond_dim"]:
            if cond is None or cond.shape != (x.shape[0], c["cond_dim"]):
                got = None if cond is None else tuple(cond.shape)
                raise SerError(f"denoiser: expected condition ({x.shape[0]}, {c['cond_dim']}), got {got}")
            cond = cond.to(x.dtype)
            if self.cond_emb is not None:
                emb = emb + self.cond_emb(cond)
            x = torch.cat([x, cond[:, :, None].expand(-1, -1, x.shape[2])], dim=1)
        if c["pos_channels"]:
            if frame_offset is None:
                frame_offset = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            pos = frame_position_channels(c["pos_channels"], x.shape[2], frame_offset.to(x.device))
            x = torch.cat([x, pos.to(x.dtype)], dim=1)
        h = self.conv_in(x)
        for layer in self.layers:
            h = layer(h, emb)
        h = self.attention(h)
        for layer in self.res_blocks:
            h = layer(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))
