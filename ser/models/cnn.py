"""Spectrogram CNN and CNN-LSTM benchmarks of Latif et al. (2020), section 4.4.

The paper follows "the architecture configuration described in [37]" for the CNN-LSTM and
replaces the LSTM by a fully connected layer for the CNN. The provided paper text does not
resolve [37] (its reference list is cut off after [24]); the candidate from the authors' own
work, Latif et al. (2019) "Direct modelling of speech emotion from raw speech", is a raw-waveform
model, not a spectrogram one. We therefore use a standard spectrogram CNN-LSTM and say so:

- conv stack: `len(conv_channels)` blocks of Conv3x3 -> BN -> ReLU -> MaxPool 2x2 stride 2 on the
  (time, freq) image (run as Conv -> BN -> MaxPool -> ReLU, the same function: `bn_relu_max_pool`);
  default channels 32-64-64-128 (16x downsampling in time and frequency),
- reshape to a sequence over time (time, C*freq),
- `cnn_lstm`: LSTM (128 units, one layer) -> last step (or mean, `lstm_pool`) -> dropout 0.5 ->
  linear classifier,
- `cnn`: the LSTM replaced by a fully connected layer applied to every time step (128 units,
  ReLU), averaged over time (so any segment length works) -> dropout 0.5 -> linear classifier.
"""
from torch import nn

from ser.errors import SerError
from ser.models.common import (DELTAS_DEFAULT, SequencePool, SerModel, bn_relu_max_pool, check_deltas,
                               image_to_sequence, input_image)
from ser.models.options import require_positive, require_probability


class ConvStack(nn.Sequential):
    """Conv(k x k, same padding) -> BN -> ReLU -> MaxPool(pool) per entry of `channels`."""

    def __init__(self, channels, kernel=3, pool=2, in_channels=1):
        layers = []
        prev = in_channels
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, kernel, padding=kernel // 2, bias=False),
                       *bn_relu_max_pool(ch, pool)]
            prev = ch
        super().__init__(*layers)
        self.out_channels = prev
        self.num_pools = len(channels) if pool > 1 else 0
        self.pool = pool

    def out_len(self, n):
        for _ in range(self.num_pools):
            n //= self.pool
        return n


_CONV_DEFAULTS = {"conv_channels": [32, 64, 64, 128], "kernel": 3, "pool": 2, "dropout": 0.5, **DELTAS_DEFAULT}


class _ConvBase(SerModel):
    def _build_convs(self):
        c = self.conf
        require_positive(self.NAME, c, "kernel", "pool")
        require_probability(self.NAME, c, "dropout")
        convs = ConvStack(c["conv_channels"], c["kernel"], c["pool"], check_deltas(self))
        self.freq_out = convs.out_len(self.feat_dim)
        if self.freq_out < 1:
            raise SerError(f"model '{self.NAME}': feat_dim {self.feat_dim} is too small for "
                           f"{convs.num_pools} poolings of {c['pool']}")
        self.min_frames = c["pool"] ** convs.num_pools
        return convs


class CnnLstm(_ConvBase):
    """`cnn_lstm`: conv stack -> LSTM over time -> dropout -> classifier (see module docstring)."""

    NAME = "cnn_lstm"
    DEFAULTS = {**_CONV_DEFAULTS, "lstm_hidden": 128, "lstm_layers": 1, "lstm_pool": "last"}
    CHOICES = {"lstm_pool": ("last", "mean")}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "lstm_hidden", "lstm_layers")
        self.convs = self._build_convs()
        self.lstm = nn.LSTM(self.convs.out_channels * self.freq_out, c["lstm_hidden"],
                            num_layers=c["lstm_layers"], batch_first=True)
        self.pool = SequencePool(c["lstm_pool"])
        self.dropout = nn.Dropout(c["dropout"])
        self.classifier = nn.Linear(c["lstm_hidden"], num_classes)

    def forward(self, x):
        self.check_input(x)
        seq, _ = self.lstm(image_to_sequence(self.convs(input_image(self, x))))
        return self.classifier(self.dropout(self.pool(seq)))


class Cnn(_ConvBase):
    """`cnn`: conv stack -> per-frame FC + ReLU (instead of the LSTM) -> time average -> dropout
    -> classifier (see module docstring)."""

    NAME = "cnn"
    DEFAULTS = {**_CONV_DEFAULTS, "fc_dim": 128}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "fc_dim")
        self.convs = self._build_convs()
        self.fc = nn.Sequential(nn.Linear(self.convs.out_channels * self.freq_out, c["fc_dim"]),
                                nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(c["dropout"])
        self.classifier = nn.Linear(c["fc_dim"], num_classes)

    def forward(self, x):
        self.check_input(x)
        frames = self.fc(image_to_sequence(self.convs(input_image(self, x))))
        return self.classifier(self.dropout(frames.mean(dim=1)))
