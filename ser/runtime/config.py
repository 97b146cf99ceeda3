"""YAML configs checked against their defaults, shared by the classifier training config
(ser/training/config.py) and the diffusion config (ser/diffusion/config.py).

A `ConfigSchema` knows the defaults (every key and its type), the keys that must be > 0, the
keys with a fixed set of values, the keys that may be null, the free-form sections (mappings whose
keys are not checked here; a hook combines and checks them), the top-level keys reserved for
the command line and the per-job keys left out of the config hash. Every error is a one-line
SerError naming the file (or --set) and the dotted key.

A *resolved* config (defaults <- YAML file <- `--set key.sub=value` overrides <- named options,
plus the command-line data arguments under `data:` and `seed:`) is stored as `<outdir>/config.yaml`
(`dump`) and compared with the stored one on a re-run (`load_stored`, `config_diff`); its hash
(`config_hash`, without the per-job keys) names the experiment.
"""
import copy
import hashlib
import json
import numbers

import yaml

from ser.errors import SerError


def read_yaml(path):
    """The YAML document of file `path` (SerError naming the file when it is not valid UTF-8 YAML;
    OSError, e.g. FileNotFoundError, as it is)."""
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
        except UnicodeDecodeError:
            raise SerError(f"{path}: not valid UTF-8") from None


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


def update_mapping(where, key, old, value):
    """The default free-form hook: the section's keys updated with `value`'s."""
    return {**old, **copy.deepcopy(value)}


class ConfigSchema:
    """Names, types and ranges of the keys of a config whose defaults are `defaults`.

    free_form: {dotted key: hook(where, key, old section, new mapping) -> merged section}."""

    def __init__(self, defaults, positive=(), choices=None, nullable=(), free_form=None,
                 reserved=("data", "seed"), bounds=None, job_keys=(), absent_when_off=()):
        self.defaults = defaults
        # top-level keys added after experiments had been run: left out of a resolved config while
        # they keep their default (off), so that the config, hash, tag and stored config.yaml of
        # every earlier experiment stay the same
        self.absent_when_off = tuple(absent_when_off)
        self.job_keys = tuple(job_keys)     # dotted keys left out of the config hash
        self.bounds = dict(bounds or {})    # dotted key -> (lowest allowed, limit it must stay below)
        self.positive = set(positive)
        self.choices = dict(choices or {})
        self.nullable = set(nullable)
        self.free_form = dict(free_form or {})
        self.reserved = set(reserved)

    def check_value(self, where, key, value, default):
        """`value` of scalar `key` checked (and converted) against the type of its default."""
        if value is None and key in self.nullable:
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
        if key in self.positive and not value > 0:
            raise SerError(f"{where}: '{key}' must be > 0, got {value!r}")
        if key in self.bounds:
            lo, hi = self.bounds[key]
            if not lo <= value < hi:
                raise SerError(f"{where}: '{key}' must be >= {lo} and < {hi}, got {value!r}")
        if key in self.choices and value not in self.choices[key]:
            raise SerError(f"{where}: '{key}' must be one of {', '.join(self.choices[key])}, got {value!r}")
        return value

    def merge(self, base, update, where, prefix=""):
        """`base` updated with `update`, checking names and types against the defaults."""
        if not isinstance(update, dict):
            what = f"section '{prefix.rstrip('.')}'" if prefix else "the config"
            raise SerError(f"{where}: {what} must be a mapping")
        out = copy.deepcopy(base)
        defaults = self.defaults
        for part in prefix.rstrip(".").split(".") if prefix else []:
            defaults = defaults[part]
        for key, value in update.items():
            full = prefix + str(key)
            if not prefix and key in self.reserved:
                raise SerError(f"{where}: key '{full}' is set from the command line, not in the config")
            if key not in defaults:
                raise SerError(f"{where}: unknown key '{full}'")
            default = defaults[key]
            if full in self.free_form:
                if not isinstance(value, dict):
                    raise SerError(f"{where}: '{full}' must be a mapping, got {value!r}")
                out[key] = self.free_form[full](where, full, out[key], value)
            elif isinstance(default, dict):
                out[key] = self.merge(out[key], value, where, full + ".")
            else:
                out[key] = self.check_value(where, full, value, default)
        return out

    def without_options_off(self, config):
        """`config` without the `absent_when_off` keys that have their default value."""
        return {k: v for k, v in config.items() if not (k in self.absent_when_off and v == self.defaults[k])}

    def load(self, path):
        """The defaults updated with the YAML file `path` (SerError naming the file and key)."""
        return self.merge(self.defaults, read_yaml(path) or {}, path)

    def apply_overrides(self, config, overrides):
        """Apply `--set key.sub=value` strings in order."""
        for text in overrides:
            config = self.merge(config, parse_override(text), f"--set {text}")
        return config

    def hash(self, resolved, length=8):
        """config_hash of a resolved config without this schema's per-job keys."""
        return config_hash(resolved, self.job_keys, length)


def canonical(config):
    """The config as it reads back from YAML (tuples become lists, etc.)."""
    return yaml.safe_load(dump(config))


def dump(config):
    """YAML text of a config, keys in insertion order."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def load_stored(path):
    """A config.yaml written by `dump` (no default filling: it is compared as it is)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SerError(f"{path}: expected a mapping")
    return data


def config_hash(resolved, job_keys=(), length=8):
    """Short sha1 of the resolved config without the dotted `job_keys` (seed, fold, ...)."""
    cfg = canonical(resolved)
    for dotted in job_keys:
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
