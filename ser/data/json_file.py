"""Reading the JSON files the programs write (metrics.json, pack.json, ...), with errors naming the file."""
import json

from ser.errors import SerError


def read_json_object(path):
    """The JSON object (dict) in `path`; SerError naming the file when it is not valid JSON or not
    an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise SerError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise SerError(f"{path}: not a JSON object")
    return data


def records(path, settings):
    """Whether the JSON object in `path` holds every key of `settings` with the same value (an
    output that records what made it); False when the file is missing or not a JSON object, so
    that the output is made again."""
    try:
        data = read_json_object(path)
    except (OSError, SerError):
        return False
    return all(data.get(k) == v for k, v in settings.items())
