"""SER model registry: `build_model(name, num_classes, feat_dim, **options)` and `MODELS`.

Every model maps a float tensor (batch, frames, feat_dim) - e.g. 256-frame segments of a
128-bin spectrogram or 80 mel bands - to logits (batch, num_classes). Options are the recipe's
`model_conf:` dict; defaults are the papers' sizes where given (see each model's docstring).
Unknown model names and unknown options raise `SerError`.

  densenet_lstm_highway  proposed model of Latif et al. (2020)     ser/models/densenet.py
  densenet, densenet_lstm  its DenseNet benchmarks                  ser/models/densenet.py
  cnn, cnn_lstm          its CNN benchmarks                          ser/models/cnn.py
  cnn_blstm              classifier of Malik, Latif et al. (2023)    ser/models/cnn_blstm.py
  mlp                    classifier of utterance-level functionals   ser/models/mlp.py
"""
from ser.errors import SerError
from ser.models.cnn import Cnn, CnnLstm
from ser.models.cnn_blstm import CnnBlstm
from ser.models.densenet import DenseNet, DenseNetLstm, DenseNetLstmHighway
from ser.models.mlp import Mlp

_REGISTRY = {cls.NAME: cls for cls in (DenseNetLstmHighway, DenseNet, DenseNetLstm, Cnn, CnnLstm, CnnBlstm, Mlp)}

MODELS = tuple(_REGISTRY)


def model_class(name):
    """The class registered under `name`; SerError naming it if there is none."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SerError(f"unknown model {name!r} (known: {', '.join(MODELS)})") from None


def model_defaults(name):
    """The default options of model `name` (a copy)."""
    return dict(model_class(name).DEFAULTS)


def build_model(name, num_classes, feat_dim, **options):
    """Build model `name` for `num_classes` classes and `feat_dim`-dimensional frames."""
    return model_class(name)(num_classes, feat_dim, **options)


__all__ = ["MODELS", "build_model", "model_class", "model_defaults"]
