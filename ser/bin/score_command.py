"""Print the scoring program and its options of test conditions, one line per condition.

    python3 -m ser.bin.score_command COND [COND ...] --data DATA --feat FEAT [--eps EPS]
        [--train-feats DIR]
    python3 -m ser.bin.score_command --list-snrs COND [COND ...]   # '0 10': the noisy copies needed

COND is a recipe's test condition (clean, snrN, fgsm, bim, fgsm_epsX, bim_epsX; see
ser.eval.conditions). For each it prints the module to run with `python3 -m` and its options:

    clean          ser.bin.score --feats-dir DATA_FEAT
    snr10          ser.bin.score --feats-dir DATA_snr10_FEAT
    fgsm           ser.bin.score_attack --attack fgsm --eps EPS  --feats-dir DATA_FEAT
    bim_eps0.02    ser.bin.score_attack --attack bim --eps 0.02 --alpha 0.0025 --steps 10 --feats-dir DATA_FEAT

(BIM: 10 steps of eps/8; the attacks run on the training features, DATA_FEAT unless
--train-feats is given). A bad condition name or radius is a one-line error (exit status 1) and
nothing is printed.
"""
import argparse

from ser.errors import run_main
from ser.eval.conditions import parse, score_command, validate


def get_parser():
    p = argparse.ArgumentParser(prog="score_command", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("conditions", nargs="+", metavar="COND", help="test condition(s)")
    p.add_argument("--data", help="the recipe's data dir, e.g. data/all4")
    p.add_argument("--feat", help="the classifiers' feature type, e.g. spec")
    p.add_argument("--list-snrs", action="store_true",
                   help="print only the SNRs of the noise conditions, space-separated, in their order")
    p.add_argument("--eps", default=None, help="attack radius of fgsm and bim (needed for them)")
    p.add_argument("--train-feats", default=None, help="features the attacks use (default DATA_FEAT)")
    return p


def main(argv=None):
    p = get_parser()
    args = p.parse_args(argv)
    if args.list_snrs:
        for c in args.conditions:
            validate(c)
        print(" ".join(parse(c).snr for c in args.conditions if parse(c).kind == "noise"))
        return 0
    if args.data is None or args.feat is None:
        p.error("--data and --feat are required (except with --list-snrs)")
    lines = [score_command(c, args.data, args.feat, args.eps, args.train_feats) for c in args.conditions]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    run_main(main)
