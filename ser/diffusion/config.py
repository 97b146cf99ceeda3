"""Diffusion training configuration (conf/diffusion.yaml): defaults, validation, overrides.

The resolved config is DEFAULTS <- the YAML file <- `--set key.sub=value` overrides, plus the
command-line data arguments under `data:` and `seed:` (set by ser.bin.train_diffusion). Every
key is checked here, so a typo is a one-line SerError naming the file and the dotted key:

- fixed sections (process, spm, segment, optim, ema) and scalar keys: name and type;
- `denoiser`: the options of ser.diffusion.MelDenoiser (a `preset` plus any of its keys);
- `conditioner`: `type` (sentencepiece | bert) and that conditioner's options, except
  `spm_model` (the trainer writes the sentencepiece model into the experiment dir) and
  `proj_dim` (always the denoiser's `cond_dim`).
"""
import copy
import numbers

import yaml

from ser.diffusion.conditioning import _DEFAULTS as CONDITIONER_OPTIONS
from ser.diffusion.denoiser import CPU_PRESET, PRESETS
from ser.errors import SerError

DEFAULTS = {
    # T, noise schedule and λ of the hybrid loss (ser.diffusion.build_diffusion)
    "process": {"steps": 4000, "schedule": "cosine", "vlb_weight": 0.001},
    "denoiser": {"preset": "cpu"},
    "conditioner": {"type": "sentencepiece"},
    # sentencepiece model trained on the fold's transcripts and condition strings
    "spm": {"vocab_size": 500, "model_type": "unigram"},
    # 256-frame segments (paper: 80 x 256); shorter ones are padded with pad_value (-1 = the
    # scaled mel of digital silence, ln(mel_floor) -> -1), NOT 0 (0 is a loud-ish mel value)
    "segment": {"length": 256, "shift": 128, "pad_value": -1.0},
    "batch_size": 16,
    "optim": {"type": "adamw", "lr": 2.0e-4, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
              "warmup_steps": 0, "grad_clip": 1.0},
    "ema": {"decay": 0.999, "warmup": True},
    "max_steps": 2500,
    "checkpoint_every": 250,
    "log_every": 50,
    # fp32 | bf16 | fp16: autocast precision on a GPU; a CPU run always uses fp32
    "precision": "fp32",
}
FREE_FORM = {"denoiser", "conditioner"}
POSITIVE = {"process.steps", "segment.length", "segment.shift", "batch_size", "optim.lr", "max_steps",
            "checkpoint_every", "log_every", "spm.vocab_size"}
CHOICES = {"process.schedule": ("cosine", "linear"), "optim.type": ("adam", "adamw"),
           "precision": ("fp32", "bf16", "fp16"), "spm.model_type": ("unigram", "bpe", "char", "word")}
RESERVED = {"data", "seed"}                # set from the command line only
DENOISER_KEYS = {"preset"} | set(CPU_PRESET)
CONDITIONER_SET_BY_TRAINER = {"spm_model", "proj_dim"}


def _check_scalar(where, key, value, default):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SerError(f"{where}: '{key}' must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SerError(f"{where}: '{key}' must be an integer, got {value!r}")
        value = int(value)
    elif isinstance(default, float):
        if isinstance(value, str):
            try:                       # PyYAML reads "1e-4" (no dot) as a string
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SerError(f"{where}: '{key}' must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise SerError(f"{where}: '{key}' must be a string, got {value!r}")
    if key in POSITIVE and not value > 0:
        raise SerError(f"{where}: '{key}' must be > 0, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise SerError(f"{where}: '{key}' must be one of {', '.join(CHOICES[key])}, got {value!r}")
    return value


def _check_free_form(where, section, value):
    """Key names of the denoiser/conditioner sections (their values are checked when built)."""
    if section == "denoiser":
        known = DENOISER_KEYS
        if "preset" in value and value["preset"] not in PRESETS:
            raise SerError(f"{where}: 'denoiser.preset' must be one of {', '.join(PRESETS)}, "
                           f"got {value['preset']!r}")
    else:
        kind = value.get("type")
        if kind not in CONDITIONER_OPTIONS:
            raise SerError(f"{where}: 'conditioner.type' must be one of {', '.join(CONDITIONER_OPTIONS)}, "
                           f"got {kind!r}")
        known = set(CONDITIONER_OPTIONS[kind]) - CONDITIONER_SET_BY_TRAINER
    for key in value:
        if key not in known:
            raise SerError(f"{where}: unknown key '{section}.{key}' (known: {', '.join(sorted(known))})")


def merge(base, update, where, prefix=""):
    """`base` updated with `update`, checking names and types against DEFAULTS."""
    if not isinstance(update, dict):
        what = f"section '{prefix.rstrip('.')}'" if prefix else "the config"
        raise SerError(f"{where}: {what} must be a mapping")
    out = copy.deepcopy(base)
    defaults = DEFAULTS
    for part in prefix.rstrip(".").split(".") if prefix else []:
        defaults = defaults[part]
    for key, value in update.items():
        full = prefix + str(key)
        if not prefix and key in RESERVED:
            raise SerError(f"{where}: key '{full}' is set from the command line, not in the config")
        if key not in defaults:
            raise SerError(f"{where}: unknown key '{full}'")
        if full in FREE_FORM:
            if not isinstance(value, dict):
                raise SerError(f"{where}: '{full}' must be a mapping, got {value!r}")
            # a new conditioner type replaces the section; otherwise keys are updated
            replace = full == "conditioner" and "type" in value and value["type"] != out[key].get("type")
            merged = copy.deepcopy(value) if replace else {**out[key], **copy.deepcopy(value)}
            _check_free_form(where, full, merged)
            out[key] = merged
        elif isinstance(defaults[key], dict):
            out[key] = merge(out[key], value, where, full + ".")
        else:
            out[key] = _check_scalar(where, full, value, defaults[key])
    return out


def load_config(path):
    """DEFAULTS updated with the YAML file `path` (SerError naming the file and key)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    return merge(DEFAULTS, data or {}, path)


def apply_overrides(config, overrides):
    """Apply `--set key.sub=value` strings in order."""
    from ser.training.config import parse_override
    for text in overrides:
        config = merge(config, parse_override(text), f"--set {text}")
    return config


def denoiser_conf(config, n_mels):
    """The MelDenoiser options of a resolved config, with n_mels from the features."""
    conf = dict(config["denoiser"])
    if conf.get("n_mels", n_mels) != n_mels:
        raise SerError(f"denoiser.n_mels is {conf['n_mels']} but the features have {n_mels} dimensions")
    conf["n_mels"] = n_mels
    return conf


def conditioner_conf(config, spm_model=None):
    """The build_conditioner options of a resolved config (without proj_dim: the networks are
    built by ser.diffusion.model_io.build_nets, which sets it to the denoiser's cond_dim)."""
    conf = dict(config["conditioner"])
    if conf["type"] == "sentencepiece":
        conf["spm_model"] = spm_model
    elif not conf.get("pretrained"):
        raise SerError("conditioner 'bert': set 'conditioner.pretrained' (a local model dir or hub id)")
    return conf
