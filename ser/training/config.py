"""Training configuration (conf/train.yaml): defaults and the checks of every key (the schema
mechanics, dump and hash: ser.runtime.config).

The *resolved* config is DEFAULTS <- the YAML file <- `--set key.sub=value` overrides <- the
named command-line options, plus the command-line data arguments under `data:` and `seed:`.
It is stored as `<outdir>/config.yaml` and in model.pt; a re-run must resolve to the same dict.

`config_hash(resolved)` identifies an experiment: it leaves out the per-job keys (`seed`,
`data.fold_dir`) and `tensorboard` (logging only), so all folds and seeds of one experiment share a hash and the recipe can put
it in the experiment tag.
"""
from ser.runtime.config import ConfigSchema, update_mapping
from ser.runtime.precision import PRECISIONS
from ser.training import init_model
from ser.training.class_weights import CLASS_WEIGHTS

DEFAULTS = {
    "model": "densenet_lstm_highway",
    "model_conf": {},                      # passed to ser.models.build_model; checked there
    "segment": {"length": 256, "shift": 128},
    "batch_size": 32,
    "optim": {"lr": 1.0e-3, "weight_decay": 0.0},   # Adam (paper sec. 4.4)
    "max_epochs": 100,
    "plateau": {"patience": 5, "factor": 0.5},
    "early_stop_patience": 20,
    "mixup": {"enabled": False, "alpha": 0.2},
    "num_workers": 0,
    "valid_every": 1,                      # epochs between validations (the last epoch is always validated)
    "valid_batch_size": 64,
    # If set, each epoch trains on a random subset of this many training segments (a new subset
    # every epoch, drawn from the checkpointed generator): a budget knob for CPU runs.
    "max_train_segments_per_epoch": None,
    # fp32 | bf16 | fp16 (fp16 on CUDA only): autocast precision of the forward pass; weights,
    # optimizer state, batch-norm statistics, softmax and loss stay fp32 (ser.runtime.precision)
    "precision": "fp32",
    # regularisation, all off by default (the papers use none of them)
    "label_smoothing": 0.0,                # epsilon: the target puts 1 - eps + eps/C on the true class
    # SpecAugment-style masking of training segments (Park et al. 2019): each segment gets
    # `time_masks` spans of 0..time_width frames and `freq_masks` spans of 0..freq_width bins set
    # to 0 (the training mean, as segments are normalised); validation and test are never masked
    "spec_augment": {"enabled": False, "time_masks": 2, "time_width": 25, "freq_masks": 2, "freq_width": 15},
    # validate and save an exponential moving average of the weights (decay per optimizer step;
    # ser.training.weight_ema) instead of the weights of the last step
    "weight_ema": {"enabled": False, "decay": 0.99},
    # model.pt = the mean of the weights of the N epochs with the best validation UAR (ESPnet's
    # n-best averaging, ser.training.nbest); 1: the best epoch's weights (the papers)
    "average_best": 1,
    # per-utterance mean (and variance) normalisation of each feature dimension before the global
    # CMVN (ESPnet's utterance_mvn; ser.training.normalization): removes the speaker's and channel's
    # average spectrum from every utterance; off in the papers
    "utterance_mvn": {"means": False, "vars": False},
    # none | balanced: weight each class's cross-entropy term by N / (K * n_c) over the training
    # segments, so that every emotion counts alike as in UAR (ser.training.class_weights); the
    # papers use none
    "class_weights": "none",
    # start from the weights of a trained model (e.g. one of another corpus), all but the
    # `exclude` prefixes; sha256 is filled in from the file (ser.training.init_model)
    "init": dict(init_model.DEFAULT),
    # also log the curves to <outdir>/tensorboard (needs the optional `tensorboard` package)
    "tensorboard": False,
}
FREE_FORM = {"model_conf"}                 # dict sections whose keys are not checked here
NULLABLE = {"max_train_segments_per_epoch"}
POSITIVE = {"segment.length", "segment.shift", "batch_size", "max_epochs", "plateau.patience",
            "early_stop_patience", "valid_every", "valid_batch_size", "max_train_segments_per_epoch",
            "optim.lr", "mixup.alpha", "average_best"}
# left out of config_hash: per-job keys, logging that does not change the results, and the name of
# the augmentation setting (its options are hashed)
JOB_KEYS = ("seed", "data.fold_dir", "data.refit_from", "tensorboard", "augmentation")
RESERVED = {"data", "seed", "augmentation"}   # set from the command line only
CHOICES = {"precision": PRECISIONS, "class_weights": CLASS_WEIGHTS}
BOUNDS = {"label_smoothing": (0.0, 1.0), "spec_augment.time_masks": (0, 100), "spec_augment.time_width": (0, 10000),
          "spec_augment.freq_masks": (0, 100), "spec_augment.freq_width": (0, 10000),
          "weight_ema.decay": (0.0, 1.0)}
ABSENT_WHEN_OFF = ("utterance_mvn", "class_weights", "init")
SCHEMA = ConfigSchema(DEFAULTS, positive=POSITIVE, choices=CHOICES, nullable=NULLABLE, bounds=BOUNDS,
                      free_form={k: update_mapping for k in FREE_FORM}, reserved=RESERVED, job_keys=JOB_KEYS,
                      absent_when_off=ABSENT_WHEN_OFF)

# merge(base, update, where): `base` updated with `update`, checked against DEFAULTS;
# load_config(path): DEFAULTS updated with a YAML file; apply_overrides(config, ["key.sub=value"]);
# config_hash(resolved): the experiment's hash (without JOB_KEYS); without_options_off(config): the
# config without the ABSENT_WHEN_OFF keys at their defaults (a resolved config never has them)
merge, load_config, apply_overrides, config_hash = SCHEMA.merge, SCHEMA.load, SCHEMA.apply_overrides, SCHEMA.hash
without_options_off = SCHEMA.without_options_off

