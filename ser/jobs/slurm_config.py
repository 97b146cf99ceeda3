"""The config of the Slurm back-end, in Kaldi slurm.pl's format: the submit command and how the
job options (--mem, --num-threads, --gpu, and any other the config describes, e.g. --time) map
to sbatch options. `parse_config` describes the format; DEFAULT_CONFIG is used without --config.
"""
import dataclasses
import re
import shlex
from typing import Dict, List, Tuple

from ser.errors import SerError

DEFAULT_CONFIG = """\
command sbatch --export=PATH --ntasks-per-node=1
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
default gpu=0
option gpu=* -p gpu --gres=gpu:$0
option gpu=0 -p cpu
option num_nodes=* --nodes $0
"""


@dataclasses.dataclass
class SlurmConfig:
    """A parsed slurm.pl config: the submit command and the option-to-sbatch-flags rules."""
    path: str
    command: List[str]
    # name -> {value or "*": (sbatch options text, with $0 for "*"; line number)}
    rules: Dict[str, Dict[str, Tuple[str, int]]]
    defaults: Dict[str, str]

    def sbatch_options(self, given):
        """The sbatch options for the options `given` ({config name: value}) plus the config's
        defaults. An exact `option name=value` rule wins over `option name=*`. Raises SerError
        for an option the config does not describe."""
        values = dict(self.defaults)
        values.update(given)
        order = list(self.rules) + sorted(n for n in values if n not in self.rules)
        words = []
        for name in order:
            if name not in values or name == "max_jobs_run":  # the array throttle, not a flag
                continue
            value = str(values[name])
            rules = self.rules.get(name, {})
            if value in rules:
                text = rules[value][0]
            elif "*" in rules:
                text = rules["*"][0].replace("$0", value)
            else:
                raise SerError(f"option --{name.replace('_', '-')} {value} is not described "
                               f"in {self.path} (no 'option {name}={value}' or "
                               f"'option {name}=*' line)")
            words += shlex.split(text)
        return words


def parse_config(text, path="<config>"):
    """Parse a config in Kaldi's slurm.pl format (see egs/TEMPLATE/conf/slurm.conf):

        command sbatch --export=PATH      # the submit command (exactly one such line)
        option mem=* --mem-per-cpu $0     # --mem V adds these options, $0 replaced by V
        option mem=0                      # ... but --mem 0 (an exact value wins) adds nothing
        default gpu=0                     # the value used when the option is not given

    '#' starts a comment. Any other line, or a malformed one, is a SerError naming path:line.
    """
    command, rules, defaults, default_lines = None, {}, {}, {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s*#.*", "", raw).strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        keyword = line.split()[0]
        if keyword == "command":
            if command is not None:
                raise SerError(f"{where}: a second 'command' line")
            command = _split(line[len("command"):], where)
            if not command:
                raise SerError(f"{where}: 'command' needs the submit program, "
                               f"e.g. 'command sbatch'")
        elif keyword == "option":
            m = re.match(r"^option\s+([A-Za-z_]\w*)=(\S+)(?:\s+(.*))?$", line)
            if not m:
                raise SerError(f"{where}: bad option line '{line}' (expected 'option NAME=VALUE "
                               f"[sbatch options]' or 'option NAME=* <sbatch options with $0>')")
            name, value, flags = m.group(1), m.group(2), m.group(3) or ""
            if value == "*" and flags and "$0" not in flags and name != "max_jobs_run":
                raise SerError(f"{where}: 'option {name}=*' needs $0 (the value) in its options")
            if value != "*" and "$0" in flags:
                raise SerError(f"{where}: $0 is only replaced in 'option {name}=*' lines")
            if value in rules.get(name, {}):
                raise SerError(f"{where}: a second 'option {name}={value}' line "
                               f"(first at line {rules[name][value][1]})")
            _split(flags.replace("$0", "x"), where)
            rules.setdefault(name, {})[value] = (flags, lineno)
        elif keyword == "default":
            m = re.match(r"^default\s+([A-Za-z_]\w*)=(\S+)$", line)
            if not m:
                raise SerError(f"{where}: bad default line '{line}' "
                               f"(expected 'default NAME=VALUE')")
            defaults[m.group(1)] = m.group(2)
            default_lines[m.group(1)] = lineno
        else:
            raise SerError(f"{where}: unknown line '{line}' (expected 'command ...', "
                           f"'option NAME=VALUE ...' or 'default NAME=VALUE')")
    if command is None:
        raise SerError(f"{path}: no 'command' line (e.g. 'command sbatch --export=PATH')")
    for name, lineno in default_lines.items():
        if name not in rules:
            raise SerError(f"{path}:{lineno}: 'default {name}=...' but no 'option {name}=' line")
    return SlurmConfig(path=path, command=command, rules=rules, defaults=defaults)


def _split(text, where):
    try:
        return shlex.split(text)
    except ValueError as e:
        raise SerError(f"{where}: {e}")


def read_config(path=None):
    """The config in `path`, or the built-in default when path is None."""
    if path is None:
        return parse_config(DEFAULT_CONFIG, "<default slurm config>")
    with open(path, encoding="utf-8") as f:
        return parse_config(f.read(), path)
