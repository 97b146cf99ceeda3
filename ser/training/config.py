"""Training configuration (conf/train.yaml): defaults, validation, overrides, dump and hash.

The *resolved* config is DEFAULTS <- the YAML file <- `--set key.sub=value` overrides <- the
named command-line options, plus the command-line data arguments under `data:` and `seed:`.
It is stored as `<outdir>/config.yaml` and in model.pt; a re-run must resolve to the same dict.

`config_hash(resolved)` identifies an experiment: it leaves out the per-job keys (`seed`,
`data.fold_dir`), so all folds and seeds of one experiment share a hash and the recipe can put
it in the experiment tag.
"""
import copy
import hashlib
import json
import numbers

import yaml

from ser.errors import SerError

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
}
FREE_FORM = {"model_conf"}                 # dict sections whose keys are not checked here
NULLABLE = {"max_train_segments_per_epoch"}
POSITIVE = {"segment.length", "segment.shift", "batch_size", "max_epochs", "plateau.patience",
            "early_stop_patience", "valid_every", "valid_batch_size", "max_train_segments_per_epoch",
            "optim.lr", "mixup.alpha"}
JOB_KEYS = ("seed", "data.fold_dir")       # left out of config_hash
RESERVED = {"data", "seed"}                # set from the command line only


def _check_value(where, key, value, default):
    if value is None and key in NULLABLE:
        return None
    ref = default if default is not None else 0
    if isinstance(ref, bool):
        if not isinstance(value, bool):
            raise SerError(f"{where}: '{key}' must be true or false, got {value!r}")
    elif isinstance(ref, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SerError(f"{where}: '{key}' must be an integer, got {value!r}")
        value = int(value)
    elif isinstance(ref, float):
        if isinstance(value, str):
            # PyYAML reads "1e-3" (no dot) as a string; accept it as the number it means
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SerError(f"{where}: '{key}' must be a number, got {value!r}")
        value = float(value)
    elif isinstance(ref, str):
        if not isinstance(value, str):
            raise SerError(f"{where}: '{key}' must be a string, got {value!r}")
    if key in POSITIVE and not value > 0:
        raise SerError(f"{where}: '{key}' must be > 0, got {value!r}")
    return value


def merge(base, update, where, prefix=""):
    """Return `base` updated with `update`, checking names and types against DEFAULTS."""
    out = copy.deepcopy(base)
    if not isinstance(update, dict):
        raise SerError(f"{where}: {'section ' + repr(prefix.rstrip('.')) if prefix else 'the config'} must be a mapping")
    defaults = _lookup(DEFAULTS, prefix.rstrip(".")) if prefix else DEFAULTS
    for key, value in update.items():
        full = prefix + str(key)
        if not prefix and key in RESERVED:
            raise SerError(f"{where}: key '{full}' is set from the command line, not in the config")
        if key not in defaults:
            raise SerError(f"{where}: unknown key '{full}'")
        default = defaults[key]
        if full in FREE_FORM:
            if not isinstance(value, dict):
                raise SerError(f"{where}: '{full}' must be a mapping, got {value!r}")
            out[key] = {**out[key], **copy.deepcopy(value)}
        elif isinstance(default, dict):
            out[key] = merge(out[key], value, where, full + ".")
        else:
            out[key] = _check_value(where, full, value, default)
    return out


def _lookup(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def load_config(path):
    """DEFAULTS updated with the YAML file `path` (SerError naming file and key on bad input)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    return merge(DEFAULTS, data or {}, path)


def parse_override(text):
    """'key.sub=value' -> {'key': {'sub': yaml(value)}}."""
    if "=" not in text:
        raise SerError(f"--set {text!r}: expected key.sub=value")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise SerError(f"--set {text!r}: bad key {key!r}")
    try:
        value = yaml.safe_load(value)
    except yaml.YAMLError:
        raise SerError(f"--set {text!r}: value is not valid YAML") from None
    tree = value
    for part in reversed(key.split(".")):
        tree = {part: tree}
    return tree


def apply_overrides(config, overrides):
    """Apply `--set` strings in order."""
    for text in overrides:
        config = merge(config, parse_override(text), f"--set {text}")
    return config


def canonical(config):
    """The config as it reads back from YAML (tuples become lists, etc.)."""
    return yaml.safe_load(dump(config))


def dump(config):
    """YAML text of a config, keys in insertion order."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def load_stored(path):
    """A config.yaml written by `dump` (no default filling: it is compared as it is)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise SerError(f"{path}: expected a mapping")
    return data


def config_hash(resolved, length=8):
    """Short sha1 of the resolved config without the per-job keys (JOB_KEYS)."""
    cfg = canonical(resolved)
    for dotted in JOB_KEYS:
        *parents, last = dotted.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    text = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def config_diff(old, new, prefix=""):
    """Dotted keys whose values differ between two configs (first differences first)."""
    diffs = []
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append((f"{prefix}{key}", a, b))
    return diffs
