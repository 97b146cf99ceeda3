"""The augmentation settings of the recipes (run.sh `--augs`): one registry for the shell and the report.

A setting is a name (`none`, `sp`, `mixup`, `sp+mixup` of paper 1; `syn`, `real+syn`,
`real+syn+mixup` of paper 2) with what it means for training: speed-perturbed copies of the
training utterances (factors SPEED_FACTORS, features in `<data>_sp<f>_<feat>`), mixup, and the
training source (real, synthetic or both). The recipes get `ser.bin.train`'s options and the data
dirs a setting needs from `python3 -m ser.bin.aug_setting`; `ser.bin.train --augmentation NAME`
records the name in the resolved config, where the report reads it back, with the label and table
order defined here.
"""
from dataclasses import dataclass

from ser.errors import SerError

SPEED_FACTORS = ("0.9", "1.1")   # as written in data dir names: <data>_sp0.9, <data>_sp1.1
SOURCE_LABELS = {"synthetic": "synthetic only", "both": "real + synthetic"}


@dataclass(frozen=True)
class AugSetting:
    name: str              # run.sh --augs name
    speed: bool            # one speed-perturbed copy per training segment (SPEED_FACTORS)
    mixup: bool
    source: str            # training data: real | synthetic | both (real + synthetic)
    label: str             # for people: table blocks, Table 2 rows
    paper: int             # the paper whose experiments use it

    @property
    def key(self):
        """The setting in experiment dir names: `sp+mixup` -> `sp_mixup`."""
        return self.name.replace("+", "_")

    def speed_dirs(self, data):
        """The speed-perturbed copies of data dir DATA this setting trains on (features: + _<feat>)."""
        return [f"{data}_sp{f}" for f in SPEED_FACTORS] if self.speed else []

    def train_options(self, data, feat, syn_dir=None):
        """`ser.bin.train` options: this setting applied to data dir DATA's FEAT features."""
        opts = ["--augmentation", self.name, "--mixup", "true" if self.mixup else "false"]
        if self.speed:
            opts += ["--aug-policy", "select"]
            for d in self.speed_dirs(data):
                opts += ["--aug-dirs", f"{d}_{feat}"]
        if self.source != "real":
            if not syn_dir:
                raise SerError(f"augmentation '{self.name}' needs the synthetic data dir")
            opts += ["--train-source", self.source, "--synthetic-dirs", syn_dir]
        return opts

    def describe(self, config):
        """The setting with its parameters, for model labels: 'speed perturbation ×0.9, ×1.1 +
        mixup α=0.2', 'real + synthetic', or 'none'."""
        parts = []
        if self.speed:
            parts.append("speed perturbation " + ", ".join(f"×{f}" for f in SPEED_FACTORS))
        if self.source != "real":
            parts.append(SOURCE_LABELS[self.source])
        if self.mixup:
            parts.append(f"mixup α={(config.get('mixup') or {}).get('alpha')}")
        return " + ".join(parts) or "none"


# In table order: paper 1's Tables 2-3, then paper 2's Table 2.
SETTINGS = {s.name: s for s in (
    AugSetting("none", False, False, "real", "no augmentation", 1),
    AugSetting("sp", True, False, "real", "speed perturbation", 1),
    AugSetting("mixup", False, True, "real", "mixup", 1),
    AugSetting("sp+mixup", True, True, "real", "speed perturbation + mixup", 1),
    AugSetting("syn", False, False, "synthetic", "synthetic only", 2),
    AugSetting("real+syn", False, False, "both", "real + synthetic", 2),
    AugSetting("real+syn+mixup", False, True, "both", "real + synthetic + mixup", 2),
)}
BY_KEY = {s.key: s for s in SETTINGS.values()}
CUSTOM = "custom"   # a config whose options match no setting (ser.bin.train run by hand)


# Paper 2's Table 2 rows (what the classifier trains on): real data is the "none" setting.
TRAINING_DATA = ("none", "syn", "real+syn", "real+syn+mixup")


def training_data_label(key):
    """A Table 2 row (setting name or key) for people: 'real', 'synthetic only', 'real + synthetic', ..."""
    return "real" if key == "none" else label(key)


def key_of(name):
    """The experiment-dir spelling of a setting name (CUSTOM as it is)."""
    return CUSTOM if name == CUSTOM else get(name).key


def get(name):
    """The setting called NAME (run.sh spelling: `sp+mixup`)."""
    setting = SETTINGS.get(name)
    if setting is None:
        raise SerError(f"unknown augmentation '{name}' ({' '.join(SETTINGS)})")
    return setting


def order(key):
    """Sort key of a setting (name or key) in tables; custom and unknown ones last."""
    setting = SETTINGS.get(key) or BY_KEY.get(key)
    return (list(SETTINGS.values()).index(setting) if setting else len(SETTINGS), str(key))


def label(key):
    """The label of a setting (name or key) for people; CUSTOM and unknown keys as they are."""
    setting = SETTINGS.get(key) or BY_KEY.get(key)
    return setting.label if setting else key


def of_options(mixup, aug_dirs, source, name=None):
    """The setting name that a training run's options make: NAME (`ser.bin.train --augmentation`)
    checked against them, else the setting with these options. Copies (AUG_DIRS) without a
    name are not taken for speed perturbation: they give CUSTOM, as any unmatched options do."""
    options = (bool(mixup), bool(aug_dirs), source or "real")
    if name is not None:
        s = get(name)
        if (s.mixup, s.speed, s.source) != options:
            raise SerError(f"--augmentation {name}: the options say mixup {options[0]}, augmented copies "
                           f"{options[1]}, training source {options[2]}; '{name}' means {s.mixup}, {s.speed}, "
                           f"{s.source}")
        return name
    for s in SETTINGS.values():
        if (s.mixup, s.speed, s.source) == options and not s.speed:
            return s.name
    return CUSTOM


def describe_config(config):
    """The augmentation of a resolved training config for people (model labels)."""
    data = config.get("data") or {}
    name = config.get("augmentation")
    if name is None:   # a config of a run before the name was recorded
        name = of_options((config.get("mixup") or {}).get("enabled"), data.get("aug_dirs"), data.get("train_source"))
    if name != CUSTOM:
        return name, get(name).describe(config)
    parts = []
    aug_dirs = data.get("aug_dirs") or []
    if aug_dirs:
        parts.append("copies from " + ", ".join(d.rstrip("/").rsplit("/", 1)[-1] for d in aug_dirs))
    if data.get("train_source") in SOURCE_LABELS:
        parts.append(SOURCE_LABELS[data["train_source"]])
    if (config.get("mixup") or {}).get("enabled"):
        parts.append(f"mixup α={config['mixup'].get('alpha')}")
    return name, " + ".join(parts) or "none"
