"""A feed-forward classifier of utterance-level feature vectors (e.g. openSMILE functionals).

The usual classifier of functional feature sets in SER (ComParE/eGeMAPS baselines use an SVM or a
small MLP on standardised functionals). Input (batch, frames, feat_dim), averaged over frames (a
functionals segment is one frame, so the average is the vector itself), then hidden layers of
Linear -> ReLU -> Dropout and a linear output; with no hidden layers (`num_layers: 0`) it is
multinomial logistic regression. Dropout is also applied to the input, as the high-dimensional
ComParE vector (6373 values from about 400 training utterances) is the main place to overfit.
"""
from torch import nn

from ser.models.common import SerModel
from ser.models.options import require_positive, require_probability


class Mlp(SerModel):
    """Mean over frames -> input Dropout -> [Linear -> ReLU -> Dropout] x num_layers -> Linear."""

    NAME = "mlp"
    DEFAULTS = {"num_layers": 2, "hidden_dim": 256, "dropout": 0.5, "input_dropout": 0.2}

    def __init__(self, num_classes, feat_dim, **options):
        super().__init__(num_classes, feat_dim, options)
        c = self.conf
        require_probability(self.NAME, c, "dropout", "input_dropout")
        require_positive(self.NAME, c, "hidden_dim")
        layers, width = [nn.Dropout(c["input_dropout"])], feat_dim
        for _ in range(c["num_layers"]):
            layers += [nn.Linear(width, c["hidden_dim"]), nn.ReLU(inplace=True), nn.Dropout(c["dropout"])]
            width = c["hidden_dim"]
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        self.check_input(x)
        return self.net(x.mean(dim=1))
