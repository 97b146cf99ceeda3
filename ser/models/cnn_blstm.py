"""CNN-BLSTM classifier of Malik, Latif et al. (2023), "A preliminary study on augmenting speech
emotion recognition using a diffusion model", section 5.2.

The segment (batch, frames, feat_dim) is read as a 1-D signal over time with feat_dim input
channels (80 mel bands in the paper):

- three Conv1d layers over time (kernel `kernel`, `conv_channels` filters), each -> BN -> ReLU ->
  dropout 0.1 (the paper: "a dropout of 0.1 between the CNN layers"),
- a BLSTM of `lstm_layers` layers with dropout 0.2 between them,
- the BLSTM's final output (forward direction's last step and backward direction's first step,
  i.e. each direction's state after the whole segment; `lstm_pool: mean` averages over time)
  -> fully connected layer to the classes.

Sizes not given in the paper and chosen here: 128 filters of width 5 (same padding, no pooling,
so the time resolution is kept), two BLSTM layers ("BLSTM layers", "dropout ... between the LSTM
layers") of 128 units per direction.
"""
from torch import nn

from ser.models.common import SequencePool, SerModel
from ser.models.options import require_positive, require_probability


class CnnBlstm(SerModel):
    """`cnn_blstm`: 3 x (Conv1d-BN-ReLU-dropout) -> BLSTM -> FC (see module docstring)."""

    NAME = "cnn_blstm"
    DEFAULTS = {"conv_channels": [128, 128, 128], "kernel": 5, "conv_dropout": 0.1,
                "lstm_hidden": 128, "lstm_layers": 2, "lstm_dropout": 0.2, "lstm_pool": "last"}
    CHOICES = {"lstm_pool": ("last", "mean")}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_positive(self.NAME, c, "kernel", "lstm_hidden", "lstm_layers")
        require_probability(self.NAME, c, "conv_dropout", "lstm_dropout")
        layers = []
        prev = feat_dim
        for ch in c["conv_channels"]:
            layers += [nn.Conv1d(prev, ch, c["kernel"], padding=c["kernel"] // 2, bias=False),
                       nn.BatchNorm1d(ch), nn.ReLU(inplace=True), nn.Dropout(c["conv_dropout"])]
            prev = ch
        self.convs = nn.Sequential(*layers)
        self.blstm = nn.LSTM(prev, c["lstm_hidden"], num_layers=c["lstm_layers"], batch_first=True,
                             bidirectional=True,
                             dropout=c["lstm_dropout"] if c["lstm_layers"] > 1 else 0.0)
        self.pool = SequencePool(c["lstm_pool"], bidirectional=True)
        self.classifier = nn.Linear(2 * c["lstm_hidden"], num_classes)
        self.min_frames = 1

    def forward(self, x):
        self.check_input(x)
        feats = self.convs(x.transpose(1, 2)).transpose(1, 2)  # (batch, frames, channels)
        seq, _ = self.blstm(feats)
        return self.classifier(self.pool(seq))
