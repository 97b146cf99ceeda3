"""Diffusion training configuration (conf/diffusion.yaml): defaults and the checks of every key
(the schema mechanics, dump and hash: ser.runtime.config).

The resolved config is DEFAULTS <- the YAML file <- `--set key.sub=value` overrides, plus the
command-line data arguments under `data:` and `seed:` (set by ser.bin.train_diffusion). Every
key is checked here, so a typo is a one-line SerError naming the file and the dotted key:

- fixed sections (process, spm, segment, optim, ema, guidance) and scalar keys: name and type;
- `denoiser`: the options of ser.diffusion.MelDenoiser (a `preset` plus any of its keys);
- `conditioner`: `type` (sentencepiece | bert) and that conditioner's options, except
  `spm_model` (the trainer writes the sentencepiece model into the experiment dir) and
  `proj_dim` (always the denoiser's `cond_dim`).
"""
import copy

from ser.diffusion.conditioning import _DEFAULTS as CONDITIONER_OPTIONS
from ser.diffusion.denoiser import CPU_PRESET, PRESETS
from ser.errors import SerError
from ser.runtime.config import ConfigSchema

DEFAULTS = {
    # T, noise schedule, λ of the hybrid loss, what the network predicts (eps | v | x0) and how
    # the learned-variance interpolation is bounded (none | clamp | sigmoid); the paper: eps, none
    # (ser.diffusion.gaussian_diffusion)
    "process": {"steps": 4000, "schedule": "cosine", "vlb_weight": 0.001, "prediction": "eps",
                "variance_bound": "none"},
    "denoiser": {"preset": "cpu"},
    "conditioner": {"type": "sentencepiece"},
    # sentencepiece model trained on the fold's transcripts and condition strings
    "spm": {"vocab_size": 500, "model_type": "unigram"},
    # 256-frame segments (paper: 80 x 256); shorter ones are padded with pad_value (-1 = the
    # scaled mel of digital silence, ln(mel_floor) -> -1), NOT 0 (0 is a loud-ish mel value)
    # crop > 0: train on random crops of `crop` frames of each segment (the frame-index channels
    # see their position in the segment); sampling always makes whole segments
    "segment": {"length": 256, "shift": 128, "pad_value": -1.0, "crop": 0},
    # per-band mean/variance normalisation before diffusion (none | band, ser.diffusion.normalize);
    # `scale` standard deviations map to 1
    "normalize": {"type": "none", "scale": 3.0},
    "batch_size": 16,
    "optim": {"type": "adamw", "lr": 2.0e-4, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
              "warmup_steps": 0, "grad_clip": 1.0},
    "ema": {"decay": 0.999, "warmup": True},
    # autoguidance (ser.diffusion.guidance): keep the EMA weights of step `snapshot_step` (0: none)
    # as the guide and sample with guide + weight·(model − guide) (1.0: unguided, the paper) on
    # the steps t < max_t_fraction·T
    "guidance": {"snapshot_step": 0, "weight": 1.0, "max_t_fraction": 1.0},
    "max_steps": 2500,
    "checkpoint_every": 250,
    "log_every": 50,
    "tensorboard": False,      # also log the curves to <outdir>/tensorboard (left out of the hash)
    # fp32 | bf16 | fp16 autocast (ser.runtime.precision): bf16 on CPUs and GPUs, fp16 on CUDA only
    "precision": "fp32",
    # written to the run's dir at the end (ser.diffusion.diagnostics): ε-MSE and x0 MAD by t on
    # `segments` validation segments, and statistics + a mel grid of `samples` samples of
    # `sampling_steps` strided steps (samples 0: none)
    "diagnostics": {"segments": 32, "samples": 8, "sampling_steps": 50},
}
FREE_FORM = {"denoiser", "conditioner"}
POSITIVE = {"process.steps", "segment.length", "segment.shift", "batch_size", "optim.lr", "max_steps",
            "checkpoint_every", "log_every", "spm.vocab_size", "normalize.scale", "diagnostics.segments",
            "diagnostics.sampling_steps"}
CHOICES = {"process.schedule": ("cosine", "linear"), "optim.type": ("adam", "adamw"),
           "process.prediction": ("eps", "v", "x0"), "process.variance_bound": ("none", "clamp", "sigmoid"),
           "normalize.type": ("none", "band"),
           "precision": ("fp32", "bf16", "fp16"), "spm.model_type": ("unigram", "bpe", "char", "word")}
RESERVED = {"data", "seed"}                # set from the command line only
# left out of config_hash: per-job keys, and logging that does not change the results
JOB_KEYS = ("seed", "data.fold_dir", "tensorboard")
DENOISER_KEYS = {"preset"} | set(CPU_PRESET)
CONDITIONER_SET_BY_TRAINER = {"spm_model", "proj_dim"}


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


def _merge_free_form(where, full, old, value):
    """A denoiser/conditioner section updated with `value`: a new conditioner type replaces the
    section, otherwise keys are updated; the key names are checked."""
    replace = full == "conditioner" and "type" in value and value["type"] != old.get("type")
    merged = copy.deepcopy(value) if replace else {**old, **copy.deepcopy(value)}
    _check_free_form(where, full, merged)
    return merged


SCHEMA = ConfigSchema(DEFAULTS, positive=POSITIVE, choices=CHOICES,
                      free_form={k: _merge_free_form for k in FREE_FORM}, reserved=RESERVED, job_keys=JOB_KEYS)

# merge(base, update, where): `base` updated with `update`, checked against DEFAULTS;
# load_config(path): DEFAULTS updated with a YAML file; apply_overrides(config, ["key.sub=value"]);
# config_hash(resolved): the hash of the diffusion experiment (without JOB_KEYS)
merge, load_config, apply_overrides, config_hash = SCHEMA.merge, SCHEMA.load, SCHEMA.apply_overrides, SCHEMA.hash


def check_config(config):
    """Cross-key checks of a resolved config (one-line SerError)."""
    seg = config["segment"]
    if not 0 <= seg["crop"] <= seg["length"]:
        raise SerError(f"segment.crop must be in [0, segment.length = {seg['length']}], got {seg['crop']}")
    guide = config["guidance"]
    if not 0 <= guide["snapshot_step"] < config["max_steps"]:
        raise SerError(f"guidance.snapshot_step must be in [0, max_steps = {config['max_steps']}), "
                       f"got {guide['snapshot_step']}")
    if not 0 < guide["max_t_fraction"] <= 1:
        raise SerError(f"guidance.max_t_fraction must be in (0, 1], got {guide['max_t_fraction']}")
    if guide["weight"] <= 0:
        raise SerError(f"guidance.weight must be > 0, got {guide['weight']}")
    if guide["weight"] != 1.0 and guide["snapshot_step"] == 0:
        raise SerError(f"guidance.weight {guide['weight']} needs a guide: set guidance.snapshot_step > 0")
    if config["diagnostics"]["samples"] < 0:
        raise SerError(f"diagnostics.samples must be >= 0, got {config['diagnostics']['samples']}")


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
