"""The recipes' augmentation settings for the shell (ser.augment.settings is the registry).

    python -m ser.bin.aug_setting table --data data/all --feat spec NAME...
    python -m ser.bin.aug_setting train-options NAME --data data/all --feat spec [--syn-dir DIR]
    python -m ser.bin.aug_setting speed-dirs --data data/all NAME...   # data dirs to perturb
    python -m ser.bin.aug_setting uses-synthetic NAME...     # 'true' or 'false'

table prints one line per setting, `NAME KEY SYNTHETIC SPEED_DIRS OPTIONS...`: its spelling in
experiment dir names (sp+mixup -> sp_mixup), whether it trains on synthetic data (true|false),
the speed-perturbed copies of DATA it trains on (comma-separated, '-' for none) and
ser.bin.train's options, with SYN_DIR_PLACEHOLDER standing for the fold's synthetic data dir;
a recipe asks once and keeps the lines. train-options prints the options of one setting
(`--augmentation NAME` first); speed-dirs the copies of DATA that any of the settings trains on
(one per line). An unknown name is a one-line error (exit status 1) and nothing is printed.
"""
import argparse

from ser.augment.settings import get
from ser.errors import run_main

SYN_DIR_PLACEHOLDER = "@SYN_DIR@"


def get_parser():
    p = argparse.ArgumentParser(prog="aug_setting", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table")
    t.add_argument("names", nargs="+")
    o = sub.add_parser("train-options")
    o.add_argument("name")
    o.add_argument("--syn-dir", default=None, help="the synthetic data dir (settings with synthetic data)")
    for q in (t, o):
        q.add_argument("--data", required=True, help="the recipe's data dir, e.g. data/all")
        q.add_argument("--feat", required=True, help="the classifiers' feature type, e.g. spec")
    s = sub.add_parser("speed-dirs")
    s.add_argument("--data", required=True)
    s.add_argument("names", nargs="+")
    sub.add_parser("uses-synthetic").add_argument("names", nargs="+")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.command == "table":
        lines = []
        for n in args.names:
            s = get(n)
            options = s.train_options(args.data, args.feat, SYN_DIR_PLACEHOLDER)
            lines.append(" ".join([s.name, s.key, "false" if s.source == "real" else "true",
                                   ",".join(s.speed_dirs(args.data)) or "-", *options]))
        print("\n".join(lines))
    elif args.command == "train-options":
        print(" ".join(get(args.name).train_options(args.data, args.feat, args.syn_dir)))
    elif args.command == "speed-dirs":
        dirs = []
        for n in args.names:
            dirs += [d for d in get(n).speed_dirs(args.data) if d not in dirs]
        for d in dirs:
            print(d)
    else:
        print("true" if any(get(n).source != "real" for n in args.names) else "false")
    return 0


if __name__ == "__main__":
    run_main(main)
