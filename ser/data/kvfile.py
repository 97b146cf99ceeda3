"""Kaldi "key value" table files (wav.scp, utt2spk, text, utt2emo, feats.scp, ...).

Each line is `<key> <value>`: the key has no white space, the value is the rest of the line
(it may contain spaces, e.g. a transcript or a piped wav.scp command). Files are sorted by key in
C-locale (byte) order, which for UTF-8 equals Python's code-point order of `str`.
"""
from ser.data.atomic import atomic_open
from ser.errors import SerError


def c_sorted(keys):
    """Keys in LC_ALL=C order (byte order of their UTF-8 encoding)."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def decoded_lines(raw_lines, name):
    """(line number, line) of byte lines decoded as UTF-8, each with its line ending; SerError
    naming `name`:line at the first line that is not UTF-8."""
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SerError(f"{name}:{lineno}: not valid UTF-8 (table files are UTF-8)") from None
        yield lineno, line


def table_lines(path):
    """decoded_lines of the file `path`."""
    with open(path, "rb") as f:
        yield from decoded_lines(f, path)


def read_kv(path, allow_empty=False):
    """Read a table file into an insertion-ordered dict.

    Raises SerError naming the file and line for a line that is not UTF-8, a line without a value
    (unless allow_empty) and a duplicated key.
    """
    table = {}
    for lineno, line in table_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            raise SerError(f"{path}:{lineno}: empty line")
        parts = line.split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty:
            raise SerError(f"{path}:{lineno}: no value for key '{key}'")
        if key in table:
            raise SerError(f"{path}:{lineno}: duplicate key '{key}'")
        table[key] = value
    return table


def read_list(path):
    """Read a table whose values are white-space separated lists (spk2utt)."""
    return {k: v.split() for k, v in read_kv(path).items()}


def write_kv(path, table, sort=True):
    """Write a dict as a table file, atomically, sorted by key in C order unless sort=False."""
    keys = c_sorted(table) if sort else list(table)
    with atomic_open(path, "w", encoding="utf-8") as f:
        for k in keys:
            v = table[k]
            if isinstance(v, (list, tuple)):
                v = " ".join(v)
            f.write(f"{k} {v}\n")
