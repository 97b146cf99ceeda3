"""Which settings two or more training configs differ in (what tells apart report rows of one model)."""
from ser.errors import SerError
from ser.models import model_defaults

IGNORED_KEYS = ("data", "seed", "outdir",   # differ between folds and runs, not between settings
                "augmentation")           # the report labels it already (ser.augment.settings)


def flatten(cfg, prefix=""):
    """{'optim.lr': 0.001, ...} of a nested config dict."""
    out = {}
    for k, v in (cfg or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def with_model_defaults(cfg):
    """CFG with its model_conf completed by the model's default options: a size left to the model
    (the paper-size configs' `model_conf: {}`) then compares as, and is reported as, its value."""
    try:
        defaults = model_defaults((cfg or {}).get("model"))
    except SerError:   # no or an unknown model: compared as written
        return cfg
    return {**cfg, "model_conf": {**defaults, **(cfg.get("model_conf") or {})}}


def config_differences(configs, keep=()):
    """{key: [value per config]} for the flattened keys whose values differ between the configs
    (model_conf completed by the model's defaults; a key one config lacks has the value None
    there); IGNORED_KEYS count only where in KEEP."""
    ignored = set(IGNORED_KEYS) - set(keep)
    flat = [flatten({k: v for k, v in (with_model_defaults(c) or {}).items() if k not in ignored}) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


def describe_values(diffs, i):
    """'label_smoothing 0.1, weight_decay 0.0001' for config i of config_differences' result."""
    return ", ".join(f"{k} {diffs[k][i]}" for k in diffs)
