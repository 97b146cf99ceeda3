"""The recipes' augmentation settings for the shell (ser.augment.settings is the registry).

    python -m ser.bin.aug_setting check NAME...              # exit 1 naming an unknown setting
    python -m ser.bin.aug_setting train-options NAME --data data/all --feat spec [--syn-dir DIR]
    python -m ser.bin.aug_setting speed-dirs --data data/all NAME...   # data dirs to perturb
    python -m ser.bin.aug_setting uses-synthetic NAME...     # 'true' or 'false'
    python -m ser.bin.aug_setting key NAME                   # its spelling in experiment dir names

train-options prints ser.bin.train's options for the setting (`--augmentation NAME` first);
speed-dirs the speed-perturbed copies of DATA that any of the settings trains on (one per line).
"""
import argparse

from ser.augment.settings import get
from ser.errors import run_main


def get_parser():
    p = argparse.ArgumentParser(prog="aug_setting", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check").add_argument("names", nargs="+")
    t = sub.add_parser("train-options")
    t.add_argument("name")
    t.add_argument("--data", required=True, help="the recipe's data dir, e.g. data/all")
    t.add_argument("--feat", required=True, help="the classifiers' feature type, e.g. spec")
    t.add_argument("--syn-dir", default=None, help="the synthetic data dir (settings with synthetic data)")
    s = sub.add_parser("speed-dirs")
    s.add_argument("--data", required=True)
    s.add_argument("names", nargs="+")
    sub.add_parser("uses-synthetic").add_argument("names", nargs="+")
    sub.add_parser("key").add_argument("name")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.command == "check":
        for n in args.names:
            get(n)
    elif args.command == "train-options":
        print(" ".join(get(args.name).train_options(args.data, args.feat, args.syn_dir)))
    elif args.command == "speed-dirs":
        dirs = []
        for n in args.names:
            dirs += [d for d in get(n).speed_dirs(args.data) if d not in dirs]
        for d in dirs:
            print(d)
    elif args.command == "uses-synthetic":
        print("true" if any(get(n).source != "real" for n in args.names) else "false")
    else:
        print(get(args.name).key)
    return 0


if __name__ == "__main__":
    run_main(main)
