"""Test conditions: the names a recipe scores (run.sh --conditions) and their result directories.

A condition name is one of

    clean                 the test speakers' utterances as they are
    snrN                  with noise added at N dB SNR (N an integer; the data dir <data>_snrN)
    fgsm, bim             under a white-box attack of the recipe's radius (run.sh --eps)
    fgsm_epsX, bim_epsX   the same attack with radius X

and a run's scores of condition C go to <run>/test_C/ (`dir_name`). This module parses names
(`parse`, `from_dir`), orders and labels them for the report (`sort_key`, `display_label`),
validates a name given to a recipe (`validate`, a one-line SerError naming the bad condition)
and builds the scoring program and options of a condition (`score_command`, the program
ser.bin.score_command).
"""
import re
from dataclasses import dataclass
from typing import Optional

from ser.errors import SerError

DIR_PREFIX = "test_"
CLEAN = "clean"
CLEAN_DIR = DIR_PREFIX + CLEAN
ATTACKS = ("fgsm", "bim")
BIM_STEPS = 10          # BIM: 10 steps of eps / 8 (Kurakin et al.'s 1.25 eps of travel, clipped to the eps-ball)
BIM_STEP_DIVISOR = 8

# What the report recognises among scored directories: any SNR number, any attack suffix.
_SNR = re.compile(r"^snr(-?\d+(?:\.\d+)?)$")
_ATTACK = re.compile(r"^(fgsm|bim)(?:_(.+))?$")
# What a recipe may be asked to score.
_VALID_SNR = re.compile(r"snr-?[0-9]{1,3}")
_RADIUS = re.compile(r"[0-9]*\.?[0-9]+")
KNOWN = "clean snrN fgsm bim fgsm_epsX bim_epsX"


@dataclass(frozen=True)
class Condition:
    """A parsed condition name."""
    name: str                      # 'clean', 'snr10', 'fgsm', 'bim_eps0.02'
    kind: str                      # 'clean', 'noise', 'attack' or 'other'
    snr: Optional[str] = None      # noise: the SNR in dB as written ('10', '-5')
    attack: Optional[str] = None   # attack: 'fgsm' or 'bim'
    eps: Optional[str] = None      # attack: the radius as written in the name; None: the recipe's --eps

    @property
    def dir_name(self):
        return DIR_PREFIX + self.name


def parse(name):
    """The Condition of a name; kind 'other' for a name that is none of the known kinds."""
    if name == CLEAN:
        return Condition(name, "clean")
    m = _SNR.match(name)
    if m:
        return Condition(name, "noise", snr=m.group(1))
    m = _ATTACK.match(name)
    if m:
        suffix = m.group(2)
        eps = suffix[3:] if suffix and suffix.startswith("eps") else None
        return Condition(name, "attack", attack=m.group(1), eps=eps)
    return Condition(name, "other")


def from_dir(dirname):
    """The Condition of a scored directory name ('test_snr10'); a name without the test_ prefix
    is kind 'other', named as it is."""
    if dirname.startswith(DIR_PREFIX):
        return parse(dirname[len(DIR_PREFIX):])
    return Condition(dirname, "other")


def dir_name(name):
    """'snr10' -> 'test_snr10'."""
    return DIR_PREFIX + name


def is_noise(dirname):
    return from_dir(dirname).kind == "noise"


def is_attack(dirname):
    return from_dir(dirname).kind == "attack"


def sort_key(dirname):
    """Report order of scored directories: clean, the SNRs from low to high, FGSM, BIM, anything
    else by name (ties by directory name)."""
    c = from_dir(dirname)
    if c.kind == "clean":
        return (0, 0.0, dirname)
    if c.kind == "noise":
        return (1, float(c.snr), dirname)
    if c.kind == "attack":
        return (2, ATTACKS.index(c.attack), dirname)
    return (3, 0.0, dirname)


def attack_label(params):
    """'FGSM (ε = 0.08)', 'BIM (ε = 0.08, α = 0.01, 10 steps)' of a set of (attack, eps, alpha,
    steps) settings, as scored runs record them; several settings joined by ' / '."""
    texts = []
    for attack, eps, alpha, steps in sorted(params, key=lambda p: tuple(str(x) for x in p)):
        parts = [f"ε = {eps:g}" if eps is not None else "ε = ?"]
        if attack == "bim":
            parts += ([f"α = {alpha:g}"] if alpha is not None else []) + ([f"{steps} steps"] if steps else [])
        texts.append(", ".join(parts))
    attack = sorted(params)[0][0].upper() if params else "?"
    return f"{attack} ({' / '.join(texts)})"


def display_label(dirname, attack_params=()):
    """The row label of a condition in the report's robustness tables: 'clean', the SNR ('10'),
    the attack with its settings (attack_label of attack_params), else the name."""
    c = from_dir(dirname)
    if c.kind == "clean":
        return "clean"
    if c.kind == "noise":
        return c.snr
    if c.kind == "attack":
        return attack_label(attack_params)
    return c.name


# --- names a recipe is asked to score -------------------------------------------------------------
def _check_radius(attack, eps):
    if not _RADIUS.fullmatch(eps):
        raise SerError(f"attack radius '{eps}' is not a number (condition {attack}_eps{eps}?)")


def validate(name):
    """The Condition of a name a recipe may score (clean, snrN with N an integer of at most three
    digits, fgsm, bim, fgsm_epsX, bim_epsX with X a plain decimal); SerError naming it otherwise."""
    if name == CLEAN:
        return Condition(name, "clean")
    if name.startswith("snr"):
        if not _VALID_SNR.fullmatch(name):
            raise SerError(f"unknown test condition '{name}' (snrN: N an integer SNR in dB)")
        return Condition(name, "noise", snr=name[3:])
    if name in ATTACKS:
        return Condition(name, "attack", attack=name)
    if name.startswith(tuple(a + "_eps" for a in ATTACKS)):
        attack, eps = name.split("_eps", 1)
        _check_radius(attack, eps)
        return Condition(name, "attack", attack=attack, eps=eps)
    raise SerError(f"unknown test condition '{name}' ({KNOWN})")


def score_command(name, data, feat, eps=None, train_feats=None):
    """The scoring program and its options of condition `name` for the data dir `data` with
    features `feat`, as one line: 'ser.bin.score --feats-dir <data>_<feat>' (clean; snrN:
    <data>_snrN_<feat>), or 'ser.bin.score_attack --attack A --eps X [--alpha X/8 --steps 10]
    --feats-dir <train_feats>' (the attack's radius from the name, else `eps`); train_feats
    defaults to <data>_<feat>. SerError for a bad name or radius."""
    c = validate(name)
    train_feats = train_feats or f"{data}_{feat}"
    if c.kind == "clean":
        return f"ser.bin.score --feats-dir {train_feats}"
    if c.kind == "noise":
        return f"ser.bin.score --feats-dir {data}_{c.name}_{feat}"
    radius = c.eps if c.eps is not None else eps
    if radius is None:
        raise SerError(f"condition '{name}' needs the attack radius (--eps)")
    _check_radius(c.attack, radius)
    bim = f"--alpha {'%g' % (float(radius) / BIM_STEP_DIVISOR)} --steps {BIM_STEPS}" if c.attack == "bim" else ""
    return f"ser.bin.score_attack --attack {c.attack} --eps {radius} {bim} --feats-dir {train_feats}"
