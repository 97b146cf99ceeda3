"""DenseNet-based SER models of Latif et al. (2020), "Deep architecture enhancing robustness to
noise, adversarial attacks, and cross-corpus setting for speech emotion recognition":

- `densenet_lstm_highway` (the proposed model, sections 3 and 4.4),
- `densenet` and `densenet_lstm` (their benchmarks, section 4.4).

The input segment (batch, frames, feat_dim) is treated as a one-channel image (batch, 1, time,
freq). Building blocks follow Huang et al. (2017), "Densely connected convolutional networks":

- stem: Conv(k x k, stride s) -> BN -> ReLU -> MaxPool(3x3, stride p). The papers do not give the
  initial convolution; the default is DenseNet-BC's 7x7 stride-2 conv + stride-2 max pool (4x
  downsampling in time and frequency), which keeps the proposed model trainable on a CPU.
  `init_stride: 1, init_pool: 1, init_kernel: 3` gives a full-resolution 3x3 stem instead.
- dense layer: BN -> ReLU -> Conv3x3(G) (eq. 1), optionally preceded by a BN -> ReLU ->
  Conv1x1(bottleneck*G) bottleneck (DenseNet-B; `bottleneck: 4`); off by default since the paper
  describes the composite function as BN-ReLU-Conv only.
- transition: BN -> ReLU -> Conv1x1 (compression 0.5, DenseNet-BC) -> AvgPool 2x2 stride 2. The
  paper lists BN, 1x1 conv and pooling; the ReLU is DenseNet's and matches the paper's "batch
  normalisation is employed before the non-linearities". (The stem's ReLU runs after its
  pooling and the transition's pooling before its convolution: the same functions, computed on
  fewer elements; see `bn_relu_max_pool` and `Transition`.)
- after the last block: BN -> ReLU (DenseNet's final normalisation).
"""
import torch
from torch import nn

from ser.errors import SerError
from ser.models.common import (DELTAS_DEFAULT, SequencePool, SerModel, bn_relu_max_pool, check_deltas,
                               image_to_sequence, input_image, pooled_len)
from ser.models.highway import HighwayBlock
from ser.models.options import require_positive, require_probability


class DenseLayer(nn.Module):
    """H_l,G of eq. 1: BN-ReLU-Conv3x3 producing `growth_rate` maps, concatenated to its input."""

    def __init__(self, in_channels, growth_rate, bottleneck=0):
        super().__init__()
        layers = []
        channels = in_channels
        if bottleneck:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                       nn.Conv2d(channels, bottleneck * growth_rate, 1, bias=False)]
            channels = bottleneck * growth_rate
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                   nn.Conv2d(channels, growth_rate, 3, padding=1, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return torch.cat([x, self.body(x)], dim=1)


class DenseBlock(nn.Sequential):
    """DenseBlock(L, G): L dense layers; each sees the maps of all preceding layers."""

    def __init__(self, in_channels, num_layers, growth_rate, bottleneck=0):
        super().__init__(*[DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck)
                           for i in range(num_layers)])
        self.out_channels = in_channels + num_layers * growth_rate


class Transition(nn.Sequential):
    """Down-sampling between blocks: BN-ReLU-Conv1x1 (compression) - AvgPool 2x2 stride 2.

    The forward pass pools before the 1x1 convolution: both are linear maps, one across channels
    and one across positions, so they commute (up to rounding), and the convolution then runs on
    a quarter of the positions. The layers keep the order above (and so the state dict keys)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.AvgPool2d(2, stride=2))
        self.out_channels = out_channels

    def forward(self, x):
        norm, relu, conv, pool = self
        return conv(pool(relu(norm(x))))


class DenseNetBackbone(nn.Module):
    """Stem, `num_blocks` DenseBlocks with a transition between consecutive blocks, final BN-ReLU.

    `forward` returns the list of every block's output map (batch, C_i, time_i, freq_i); the last
    one has gone through the final BN-ReLU.
    """

    def __init__(self, num_blocks, num_layers, growth_rate, bottleneck, compression,
                 init_channels, init_kernel, init_stride, init_pool, in_channels=1):
        super().__init__()
        init_channels = init_channels or 2 * growth_rate
        self.init_kernel, self.init_stride, self.init_pool = init_kernel, init_stride, init_pool
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, init_channels, init_kernel, stride=init_stride, padding=init_kernel // 2,
                      bias=False),
            *bn_relu_max_pool(init_channels, init_pool, kernel=3, padding=1))
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        channels = init_channels
        self.block_channels = []
        for b in range(num_blocks):
            block = DenseBlock(channels, num_layers, growth_rate, bottleneck)
            self.blocks.append(block)
            channels = block.out_channels
            self.block_channels.append(channels)
            if b < num_blocks - 1:
                out = max(1, int(compression * channels))
                self.transitions.append(Transition(channels, out))
                channels = out
        self.final_norm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.out_channels = channels

    def out_len(self, n):
        """Length along time or frequency of the last block's output for an input of length n."""
        n = pooled_len(n, self.init_kernel, self.init_stride, self.init_kernel // 2)
        if self.init_pool > 1:
            n = pooled_len(n, 3, self.init_pool, 1)
        for _ in self.transitions:
            n //= 2
        return n

    def forward(self, image):
        x = self.stem(image)
        outputs = []
        for b, block in enumerate(self.blocks):
            x = block(x)
            if b < len(self.transitions):
                outputs.append(x)
                x = self.transitions[b](x)
        outputs.append(self.final_norm(x))
        return outputs


_BACKBONE_DEFAULTS = {
    "num_layers": 6,       # L
    "bottleneck": 0,       # 0: BN-ReLU-Conv3x3 layers; 4: DenseNet-B bottleneck of 4*G maps
    "compression": 0.5,    # transition output = compression * input channels (DenseNet-BC)
    "init_channels": 0,    # 0: 2 * growth_rate (DenseNet-BC)
    "init_kernel": 7,
    "init_stride": 2,
    "init_pool": 2,        # stride of the 3x3 max pool after the stem conv; 1: no pool
    **DELTAS_DEFAULT,
}


def _min_len(backbone):
    n = 1
    while backbone.out_len(n) < 1:
        n += 1
    return n


class _DenseNetBase(SerModel):
    """Builds and size-checks the backbone from `self.conf`."""

    def _build_recurrent(self):
        """The backbone, then an LSTM over the time axis of its last map (sequence pooling, dropout):
        the shared front of densenet_lstm and the proposed model."""
        c = self.conf
        self.backbone = self._build_backbone()
        self.lstm = nn.LSTM(self.backbone.out_channels * self.freq_out, c["lstm_hidden"],
                            num_layers=c["lstm_layers"], batch_first=True)
        self.pool = SequencePool(c["lstm_pool"])
        self.dropout = nn.Dropout(c["dropout"])

    def _build_backbone(self):
        c = self.conf
        require_positive(self.NAME, c, "num_blocks", "num_layers", "growth_rate", "compression",
                         "init_kernel", "init_stride", "init_pool")
        if c["compression"] > 1:
            raise SerError(f"model '{self.NAME}': option 'compression' must be in (0, 1], got {c['compression']}")
        backbone = DenseNetBackbone(c["num_blocks"], c["num_layers"], c["growth_rate"], c["bottleneck"],
                                    c["compression"], c["init_channels"], c["init_kernel"],
                                    c["init_stride"], c["init_pool"], check_deltas(self))
        self.freq_out = backbone.out_len(self.feat_dim)
        if self.freq_out < 1:
            raise SerError(f"model '{self.NAME}': feat_dim {self.feat_dim} is too small for "
                           f"{c['num_blocks']} blocks with init_stride {c['init_stride']} and "
                           f"init_pool {c['init_pool']}")
        self.min_frames = _min_len(backbone)
        return backbone


class DenseNet(_DenseNetBase):
    """Benchmark `densenet` (Latif et al. 2020, 4.4): three DenseBlocks (L=6, G=16) with
    transitions, global average pooling, FC 1000 + ReLU, linear classifier.

    The paper's "3x3 global average pooling" is implemented as global average pooling over time
    and frequency, so that any segment length works. `dropout` (default 0, none in the paper)
    applies before the classifier.
    """

    NAME = "densenet"
    DEFAULTS = {"num_blocks": 3, "growth_rate": 16, **_BACKBONE_DEFAULTS,
                "fc_dim": 1000, "dropout": 0.0}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "fc_dim")
        require_probability(self.NAME, c, "dropout")
        self.backbone = self._build_backbone()
        self.fc = nn.Sequential(nn.Linear(self.backbone.out_channels, c["fc_dim"]), nn.ReLU(inplace=True),
                                nn.Dropout(c["dropout"]))
        self.classifier = nn.Linear(c["fc_dim"], num_classes)

    def forward(self, x):
        self.check_input(x)
        fmap = self.backbone(input_image(self, x))[-1]
        return self.classifier(self.fc(fmap.mean(dim=(2, 3))))


class DenseNetLstm(_DenseNetBase):
    """Benchmark `densenet_lstm` (Latif et al. 2020, 4.4): the `densenet` model with an LSTM over
    time instead of the global pooling, then the same head (FC 1000 + ReLU, classifier).

    The last block's map (batch, C, time, freq) is reshaped to a sequence (time, C*freq). The LSTM
    size is not given in the paper: `lstm_hidden` 128 (as for the proposed model), summarised by its
    last step (`lstm_pool: mean` averages over time). Dropout 0.5 after the LSTM, as in the
    proposed model.
    """

    NAME = "densenet_lstm"
    DEFAULTS = {"num_blocks": 3, "growth_rate": 16, **_BACKBONE_DEFAULTS,
                "lstm_hidden": 128, "lstm_layers": 1, "lstm_pool": "last", "dropout": 0.5,
                "fc_dim": 1000}
    CHOICES = {"lstm_pool": ("last", "mean")}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "lstm_hidden", "lstm_layers", "fc_dim")
        require_probability(self.NAME, c, "dropout")
        self._build_recurrent()
        self.fc = nn.Sequential(nn.Linear(c["lstm_hidden"], c["fc_dim"]), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c["fc_dim"], num_classes)

    def forward(self, x):
        self.check_input(x)
        fmap = self.backbone(input_image(self, x))[-1]
        seq, _ = self.lstm(image_to_sequence(fmap))
        return self.classifier(self.fc(self.dropout(self.pool(seq))))


class DenseNetLstmHighway(_DenseNetBase):
    """The proposed model of Latif et al. (2020), sections 3 and 4.4.

    stem -> DenseBlock(L=6, G=24) -> transition -> DenseBlock(L=6, G=24) -> BN-ReLU
    -> reshape to a sequence over time (time, C*freq) -> LSTM -> dropout 0.5 -> last step;
    skip connections: each DenseBlock's output, globally average-pooled and projected (linear) to
    `skip_dim`, summed;
    [LSTM features, summed skips] -> linear projection to `highway_dim` (128)
    -> highway block of three 128-unit ReLU layers (eq. 2; see `ser.models.highway`) -> classifier.

    Sizes not given in the paper and chosen here: the DenseNet-BC stem (7x7 stride 2 + 3x3 max pool
    stride 2, 2G = 48 maps), transition compression 0.5, `lstm_hidden` 128 (one layer,
    unidirectional; `lstm_pool: mean` averages over time instead of the last step), `skip_dim` 128.
    The carry gate C has its own weights as in eq. 2; `highway_coupled: true` uses Srivastava's
    C = 1 - T instead. CPU knobs: `init_stride`, `init_pool`, `growth_rate`, `num_layers`,
    `lstm_hidden`.
    """

    NAME = "densenet_lstm_highway"
    DEFAULTS = {"num_blocks": 2, "growth_rate": 24, **_BACKBONE_DEFAULTS,
                "lstm_hidden": 128, "lstm_layers": 1, "lstm_pool": "last", "dropout": 0.5,
                "skip_dim": 128, "highway_dim": 128, "highway_layers": 3, "highway_coupled": False}
    CHOICES = {"lstm_pool": ("last", "mean")}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "lstm_hidden", "lstm_layers", "skip_dim", "highway_dim",
                         "highway_layers")
        require_probability(self.NAME, c, "dropout")
        self._build_recurrent()
        self.skips = nn.ModuleList(nn.Linear(ch, c["skip_dim"]) for ch in self.backbone.block_channels)
        self.highway_in = nn.Linear(c["lstm_hidden"] + c["skip_dim"], c["highway_dim"])
        self.highway = HighwayBlock(c["highway_dim"], c["highway_layers"], c["highway_coupled"])
        self.classifier = nn.Linear(c["highway_dim"], num_classes)

    def forward(self, x):
        self.check_input(x)
        maps = self.backbone(input_image(self, x))
        seq, _ = self.lstm(image_to_sequence(maps[-1]))
        context = self.dropout(self.pool(seq))
        skip = sum(proj(m.mean(dim=(2, 3))) for proj, m in zip(self.skips, maps))
        hidden = self.highway(self.highway_in(torch.cat([context, skip], dim=1)))
        return self.classifier(hidden)
