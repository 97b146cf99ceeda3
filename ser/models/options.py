"""Model options from the YAML `model_conf:` dict: defaults, unknown names and type checks.

Every model class declares `DEFAULTS` (option -> default value, which also fixes the type) and
optionally `CHOICES` (option -> allowed strings). `resolve_options` merges the user's options
over the defaults and raises `SerError` naming the model and the offending option.
"""
import numbers

from ser.errors import SerError


def _check_value(model, key, value, default, choices):
    where = f"model '{model}': option '{key}'"
    if key in choices:
        if value not in choices[key]:
            raise SerError(f"{where} must be one of {', '.join(map(str, choices[key]))}, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SerError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SerError(f"{where} must be an integer, got {value!r}")
        if value < 0:
            raise SerError(f"{where} must be >= 0, got {value}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SerError(f"{where} must be a number, got {value!r}")
        if value < 0:
            raise SerError(f"{where} must be >= 0, got {value}")
        return float(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value):
            raise SerError(f"{where} must be a non-empty list of positive integers, got {value!r}")
        return [int(v) for v in value]
    if isinstance(default, str):
        if not isinstance(value, str):
            raise SerError(f"{where} must be a string, got {value!r}")
        return value
    raise AssertionError(f"unsupported default type for {key}")  # programming error, not input


def resolve_options(model, defaults, options, choices=None):
    """Return `defaults` updated with `options`, after checking names and types.

    Raises SerError for an option the model does not know (listing the known ones) or a value of
    the wrong type/sign.
    """
    choices = choices or {}
    unknown = [k for k in options if k not in defaults]
    if unknown:
        raise SerError(f"model '{model}': unknown option(s) {', '.join(map(repr, unknown))} in model_conf "
                       f"(known: {', '.join(sorted(defaults))})")
    conf = dict(defaults)
    for key, value in options.items():
        conf[key] = _check_value(model, key, value, defaults[key], choices)
    return conf


def require_positive(model, conf, *keys):
    """SerError unless every named option is > 0 (sizes that cannot be zero)."""
    for key in keys:
        if conf[key] <= 0:
            raise SerError(f"model '{model}': option '{key}' must be > 0, got {conf[key]}")


def require_probability(model, conf, *keys):
    """SerError unless every named option is a dropout probability in [0, 1)."""
    for key in keys:
        if not 0.0 <= conf[key] < 1.0:
            raise SerError(f"model '{model}': option '{key}' must be in [0, 1), got {conf[key]}")
