"""Highway layers (Srivastava, Greff & Schmidhuber, 2015) as used by Latif et al. (2020), eq. 2:

    y = H(x, W_H) * T(x, W_T) + x * C(x, W_C)

H is a fully connected ReLU layer, T (transform gate) and C (carry gate) are sigmoid gates.
Latif et al. write C with its own weights W_C, so by default C is a separately learned gate
(`coupled=False`); Srivastava et al.'s original variant C = 1 - T is available with
`coupled=True` (model option `highway_coupled: true`).

Gate biases start at T: -1 (as Srivastava et al. recommend, a negative transform bias so that
early training mostly carries the input) and C: +1, so that both variants start close to the
identity.
"""
import torch
from torch import nn


class Gate(nn.Module):
    """sigmoid(W x + b): a gate with outputs in (0, 1), one per unit."""

    def __init__(self, dim, bias_init):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.constant_(self.linear.bias, bias_init)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class HighwayLayer(nn.Module):
    """One highway layer of `dim` units: y = relu(W_H x + b_H) * T(x) + x * C(x)."""

    def __init__(self, dim, coupled=False, transform_bias=-1.0, carry_bias=1.0):
        super().__init__()
        self.coupled = coupled
        self.hidden = nn.Linear(dim, dim)               # H(x, W_H), followed by ReLU
        self.transform_gate = Gate(dim, transform_bias)  # T(x, W_T)
        self.carry_gate = None if coupled else Gate(dim, carry_bias)  # C(x, W_C)

    def forward(self, x):
        h = torch.relu(self.hidden(x))
        t = self.transform_gate(x)
        c = 1.0 - t if self.coupled else self.carry_gate(x)
        return h * t + x * c


class HighwayBlock(nn.Sequential):
    """`num_layers` highway layers of `dim` units (Latif et al.: three layers of 128 units)."""

    def __init__(self, dim, num_layers=3, coupled=False):
        super().__init__(*[HighwayLayer(dim, coupled=coupled) for _ in range(num_layers)])
