"""Checking a data directory, as Kaldi's utils/validate_data_dir.sh does.

Every problem is reported as a SerError with one line naming the file and, where there is one,
the line: `data/all/utt2emo:12: not sorted (LC_ALL=C)`.
"""
import re

from ser.data.datadir import DataDir, allows_empty_value, is_utt_table, sorted_spk2utt
from ser.data.kvfile import table_lines
from ser.errors import SerError

FEATS_CHECK_MODES = ("none", "ends", "full")


def read_checked_table(path, allow_empty=False):
    """Read a table file, checking its format: returns ({key: value}, {key: line number}).

    Raises SerError naming file:line for an empty line, a DOS line ending, a key without value
    (unless allow_empty), a duplicated key, or a key out of C order.
    """
    table, lines = {}, {}
    prev = None
    for lineno, line in table_lines(path):
        where = f"{path}:{lineno}"
        if line.endswith("\r\n"):
            raise SerError(f"{where}: DOS line ending (\\r)")
        line = line.rstrip("\n")
        if not line.strip():
            raise SerError(f"{where}: empty line")
        if line[0].isspace():
            raise SerError(f"{where}: line starts with white space")
        parts = line.split(maxsplit=1)
        key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        if not value and not allow_empty:
            raise SerError(f"{where}: no value for key '{key}'")
        if key in table:
            raise SerError(f"{where}: duplicate key '{key}'")
        bkey = key.encode("utf-8")
        if prev is not None and bkey < prev:
            raise SerError(f"{where}: not sorted (LC_ALL=C)")
        prev = bkey
        table[key], lines[key] = value, lineno
    return table, lines


def _check_same_keys(ddir, name, table, lines, ref, ref_name, ref_lines, what):
    """Every key of `ref` is in `table` and no other: error names the line at fault."""
    for key in ref:
        if key not in table:
            raise SerError(f"{ddir.file(name)}: no entry for {what} '{key}' "
                           f"({ref_name}:{ref_lines[key]})")
    for key in table:
        if key not in ref:
            raise SerError(f"{ddir.file(name)}:{lines[key]}: {what} '{key}' is not in {ref_name}")


def read_source_tables(src):
    """Every table of data dir `src` (a DataDir) as read_kv reads it, checked the way
    validate_data_dir checks them, without its format rules (order, line endings): utt2spk's values
    are single speaker ids and every per-utterance table holds exactly utt2spk's utterances. A tool
    that copies or combines a source that fails this would write a data dir no stage can use.
    Line numbers are the keys' positions (read_kv allows no empty line)."""
    if not src.has("utt2spk"):
        raise SerError(f"{src.file('utt2spk')}: no such file (not a data directory?)")
    tables = src.read_tables()
    lines = {name: {k: i for i, k in enumerate(table, 1)} for name, table in tables.items()}
    utt2spk = tables["utt2spk"]
    _check_values(src, "utt2spk", utt2spk, lines["utt2spk"])
    for name, table in sorted(tables.items()):
        if name != "utt2spk" and is_utt_table(name):
            _check_same_keys(src, name, table, lines[name], utt2spk, "utt2spk", lines["utt2spk"], "utterance")
    return tables


def _check_values(ddir, name, table, lines):
    """Per-file value formats."""
    where = lambda k: f"{ddir.file(name)}:{lines[k]}"  # noqa: E731
    if name == "utt2dur":
        for k, v in table.items():
            try:
                ok = float(v) > 0 and v.lower() not in ("inf", "+inf", "infinity", "nan")
            except ValueError:
                ok = False
            if not ok:
                raise SerError(f"{where(k)}: duration '{v}' of '{k}' is not a positive number")
    elif name == "utt2num_frames":
        for k, v in table.items():
            if not re.fullmatch(r"\d+", v) or int(v) == 0:
                raise SerError(f"{where(k)}: frame count '{v}' of '{k}' is not a positive integer")
    elif name in ("utt2spk", "utt2emo", "utt2uniq", "utt2lang"):
        for k, v in table.items():
            if len(v.split()) != 1:
                raise SerError(f"{where(k)}: value of '{k}' must be one word, got '{v}'")


def _check_speaker_prefixes(ddir, utt2spk, lines):
    """Utterance ids start with their speaker id, and sorting by speaker keeps the utt order.

    The second condition is what Kaldi really needs (per-speaker tools read utterances in
    order); with speaker-prefixed ids it fails only for speaker ids that are prefixes of one
    another in an unlucky way.
    """
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk):
            raise SerError(f"{ddir.file('utt2spk')}:{lines[utt]}: utterance id '{utt}' is not "
                           f"prefixed by its speaker id '{spk}'")
    by_spk = sorted(utt2spk, key=lambda u: (utt2spk[u].encode("utf-8"), u.encode("utf-8")))
    for utt_sorted, utt in zip(utt2spk, by_spk):
        if utt_sorted != utt:
            raise SerError(f"{ddir.file('utt2spk')}:{lines[utt_sorted]}: sorting by speaker id "
                           f"changes the order of utterances at '{utt_sorted}' "
                           f"(make speaker ids prefixes of utterance ids)")


def _check_spk2utt(ddir, utt2spk):
    spk2utt, lines = read_checked_table(ddir.file("spk2utt"))
    expected = sorted_spk2utt(utt2spk)
    for spk, utts in spk2utt.items():
        if spk not in expected:
            raise SerError(f"{ddir.file('spk2utt')}:{lines[spk]}: speaker '{spk}' is not in utt2spk")
        if utts.split() != expected[spk]:
            raise SerError(f"{ddir.file('spk2utt')}:{lines[spk]}: utterances of speaker '{spk}' "
                           f"do not match utt2spk (run utils/fix_data_dir.py)")
    for spk in expected:
        if spk not in spk2utt:
            raise SerError(f"{ddir.file('spk2utt')}: no entry for speaker '{spk}' of utt2spk")


def _check_feats(ddir, feats, lines, num_frames, mode):
    """Read feature matrices with kaldiio: the first and last ('ends') or all ('full')."""
    import kaldiio

    keys = list(feats)
    if mode == "ends":
        keys = keys[:1] + keys[-1:] if len(keys) > 1 else keys
    dim = None
    for key in keys:
        where = f"{ddir.file('feats.scp')}:{lines[key]}"
        try:
            mat = kaldiio.load_mat(feats[key])
        except Exception as e:  # kaldiio raises many kinds; all mean "unreadable"
            reason = " ".join(str(e).split()) or type(e).__name__
            raise SerError(f"{where}: cannot read features of '{key}': {reason} (at {feats[key]})")
        if getattr(mat, "ndim", 0) != 2 or mat.shape[0] == 0:
            raise SerError(f"{where}: features of '{key}' are not a non-empty matrix "
                           f"(shape {getattr(mat, 'shape', None)})")
        if dim is None:
            dim = mat.shape[1]
        elif mat.shape[1] != dim:
            raise SerError(f"{where}: features of '{key}' have dimension {mat.shape[1]}, "
                           f"the first ones {dim}")
        if num_frames is not None and int(num_frames[key]) != mat.shape[0]:
            raise SerError(f"{where}: features of '{key}' have {mat.shape[0]} frames, "
                           f"utt2num_frames says {num_frames[key]}")


def _check_labels(ddir, table, lines, classes):
    """Every utt2emo label is one of `classes` (an unknown one would become an extra class)."""
    for k, v in table.items():
        if v not in classes:
            raise SerError(f"{ddir.file('utt2emo')}:{lines[k]}: label '{v}' of '{k}' is not one of "
                           f"the classes ({' '.join(classes)})")


def validate_data_dir(path, no_feats=False, no_text=False, no_wav=False, feats_check="ends",
                      classes=None):
    """Check the data directory `path`; raise SerError on the first problem.

    Required: utt2spk, spk2utt, utt2emo, and wav.scp unless no_wav or feats.scp is present.
    no_text/no_feats/no_wav skip text, feats.scp and wav.scp altogether. feats_check says which
    matrices of feats.scp are read: 'none', 'ends' (first and last) or 'full'. classes: the
    allowed utt2emo labels (None: any). Returns a
    summary dict (num_utts, num_spks, tables).
    """
    if feats_check not in FEATS_CHECK_MODES:
        raise ValueError(f"feats_check must be one of {FEATS_CHECK_MODES}")
    ddir = DataDir(path)
    present = ddir.tables()  # raises for a missing directory
    skipped = {n for n, skip in (("text", no_text), ("feats.scp", no_feats), ("wav.scp", no_wav))
               if skip}
    required = ["utt2spk", "spk2utt", "utt2emo"]
    if not no_wav and "feats.scp" not in present:
        required.append("wav.scp")
    for name in required:
        if name not in present:
            raise SerError(f"{ddir.file(name)}: no such file (required)")

    utt2spk, utt_lines = read_checked_table(ddir.file("utt2spk"))
    if not utt2spk:
        raise SerError(f"{ddir.file('utt2spk')}: empty")
    _check_values(ddir, "utt2spk", utt2spk, utt_lines)
    _check_speaker_prefixes(ddir, utt2spk, utt_lines)
    _check_spk2utt(ddir, utt2spk)
    speakers = set(utt2spk.values())
    spk_lines = {}  # speakers have no line of their own: name the first utterance's
    for utt, spk in utt2spk.items():
        spk_lines.setdefault(spk, utt_lines[utt])

    tables = {}
    for name in present:
        if name in ("utt2spk", "spk2utt") or name in skipped:
            continue
        table, lines = read_checked_table(ddir.file(name), allow_empty=allows_empty_value(name))
        tables[name] = (table, lines)
        if is_utt_table(name):
            _check_same_keys(ddir, name, table, lines, utt2spk, "utt2spk", utt_lines, "utterance")
        else:
            _check_same_keys(ddir, name, table, lines, speakers, "utt2spk", spk_lines, "speaker")
        _check_values(ddir, name, table, lines)
        if name == "utt2emo" and classes is not None:
            _check_labels(ddir, table, lines, classes)

    if "feats.scp" in tables and feats_check != "none":
        num_frames = tables["utt2num_frames"][0] if "utt2num_frames" in tables else None
        _check_feats(ddir, *tables["feats.scp"], num_frames, feats_check)
    return {"num_utts": len(utt2spk), "num_spks": len(speakers),
            "tables": sorted(set(tables) | {"utt2spk", "spk2utt"})}
