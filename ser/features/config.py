"""Feature configs: read a YAML file and check its keys and value types.

A config is a flat mapping with `type` (a key of ser.features.EXTRACTORS) and that extractor's
parameters (its PARAMS); missing parameters take the extractor's defaults. An unknown key or a
value of the wrong type is a SerError naming the file and the key.
"""

from ser.errors import SerError
from ser.runtime.config import read_yaml

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_value(key, value, expected, source):
    """Return `value` converted to `expected`, or raise SerError naming source and key."""
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if ok:
        return value
    hint = ""
    if expected is float and isinstance(value, str):
        try:
            float(value)
            hint = " (YAML reads 1e-5 as a string: write 1.0e-5)"
        except ValueError:
            pass
    raise SerError(f"{source}: key '{key}' must be {_TYPE_NAMES[expected]}, got {value!r}{hint}")


def check_feats_config(config, source="<config>"):
    """Validate a config dict; returns a new dict with every parameter (defaults filled in)."""
    from ser.features import EXTRACTORS  # the registry imports this module

    if not isinstance(config, dict):
        raise SerError(f"{source}: expected a mapping of keys to values, got {type(config).__name__}")
    if "type" not in config:
        raise SerError(f"{source}: missing key 'type' (one of {', '.join(sorted(EXTRACTORS))})")
    ftype = config["type"]
    if ftype not in EXTRACTORS:
        raise SerError(f"{source}: key 'type': unknown feature type {ftype!r} "
                       f"(one of {', '.join(sorted(EXTRACTORS))})")
    params = EXTRACTORS[ftype].PARAMS
    out = {"type": ftype}
    for key, value in config.items():
        if key == "type":
            continue
        if key not in params:
            raise SerError(f"{source}: unknown key '{key}' for type '{ftype}' "
                           f"(allowed: {', '.join(['type'] + list(params))})")
        out[key] = _check_value(key, value, params[key][0], source)
    for key, (_, default) in params.items():
        out.setdefault(key, default)
    return out


def read_feats_config(path):
    """Read and validate a feature config YAML file (see check_feats_config)."""
    try:
        config = read_yaml(path)
    except FileNotFoundError:
        raise SerError(f"no such feature config: {path}") from None
    return check_feats_config(config, source=str(path))
