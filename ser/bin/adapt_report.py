"""Report of cross-corpus adaptation experiments (paper 2, Figure 4): UAR per added fraction.

    python -m ser.bin.adapt_report --exp-dir exp/emodb_to_ravdess_adapt/<split> [--exp-dir ...]
        [--corpus-note "train EmoDB + part of RAVDESS -> test RAVDESS" ...] --out RESULTS_adapt.md
        [--condition test_clean] [--digits 1]

Each --exp-dir holds the tags `<feat>_<model>_<aug>_f<F>_<hash>` of egs/cross_corpus/run.sh
--setup adapt (ser.eval.adapt_plot). For each: a table of mean ± std UAR over the seeds, one row
per setting and one column per fraction F of the target corpus added to training (with the
number of target utterances added, from the fold's info.yaml), and a line plot
<exp-dir>/adapt_uar.png. Written atomically.
"""
import argparse
import os

from ser.data.atomic import atomic_write_text
from ser.data.cli import non_negative_int
from ser.data.fold_dir import read_info
from ser.errors import SerError, run_main
from ser.eval.adapt_plot import adaptation_grid, grid_arrays, markdown_table, save_line_plot_png
from ser.eval.aggregate import collect_runs, corpus_name, run_config, summarize

PNG_NAME = "adapt_uar.png"


def get_parser():
    p = argparse.ArgumentParser(prog="adapt_report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", action="append", required=True, help="adaptation experiment dir (repeatable)")
    p.add_argument("--corpus-note", action="append", default=[], help="description of each --exp-dir (same order)")
    p.add_argument("--out", required=True, help="markdown file to write")
    p.add_argument("--title", default="Cross-corpus adaptation (paper 2, Figure 4)")
    p.add_argument("--condition", default="test_clean", help="scored condition to report (default test_clean)")
    p.add_argument("--digits", type=non_negative_int, default=1, help="decimals of percentages (default 1)")
    return p


def _fold_info(summary, exp_dir):
    """info.yaml of the fold a summary's first run trained on ({} if not found). Config paths are
    relative to the recipe dir: the parent of the path's last `exp` component."""
    cfg = run_config(summary.runs[0].run_dir) if summary.runs else None
    fold_dir = ((cfg or {}).get("data") or {}).get("fold_dir")
    if not fold_dir:
        return {}
    if not os.path.isabs(fold_dir) and not os.path.exists(fold_dir):
        parts = os.path.abspath(exp_dir).split(os.sep)
        if "exp" in parts[1:]:
            i = len(parts) - 1 - parts[::-1].index("exp")
            fold_dir = os.path.join(os.sep.join(parts[:i]), fold_dir)
    return read_info(fold_dir)


def exp_section(exp_dir, note, out_dir, condition, digits):
    """Markdown lines of one experiment dir; writes its PNG."""
    name = corpus_name(exp_dir)
    fractions, series, grid = adaptation_grid(summarize(collect_runs(exp_dir, name)), condition)
    if not series:
        raise SerError(f"{exp_dir}: no scored adaptation runs (<feat>_<model>_<aug>_f<F>_<hash>/fold.1/"
                       f"seed<s>/{condition}/ with done)")
    mean, std, n = grid_arrays(fractions, series, grid)
    infos = {f: _fold_info(grid[(s, f)], exp_dir) for s in series for f in fractions if (s, f) in grid}
    added = {f: i["num_adapt"] for f, i in infos.items() if "num_adapt" in i}
    png = os.path.join(exp_dir, PNG_NAME)
    save_line_plot_png(png, fractions, series, mean, std, title=note or name)
    lines = [f"## {name}", ""]
    if note:
        lines += [note, ""]
    info = next(iter(infos.values()), {})
    if info:
        lines += [f"Test: {info.get('num_test', '?')} target utterances ({100 * info.get('test_fraction', 0):g} % "
                  f"of the target, drawn by {info.get('adapt_unit', '?')}; the same for every fraction). "
                  f"Model selection: {info.get('num_valid', '?')} utterances of the held-out source "
                  f"speaker(s) {', '.join(str(s) for s in info.get('valid_speakers', []))}. "
                  f"UAR (%) mean ± std over the seeds (number of seeds).", ""]
    lines += markdown_table(fractions, series, mean, std, n, added or None, digits)
    lines += ["", f"![UAR against the added target data]({os.path.relpath(png, out_dir)})", ""]
    return lines


def main(argv=None):
    args = get_parser().parse_args(argv)
    if len(args.corpus_note) not in (0, len(args.exp_dir)):
        raise SerError(f"give --corpus-note once per --exp-dir ({len(args.exp_dir)}), not {len(args.corpus_note)} times")
    notes = args.corpus_note or [None] * len(args.exp_dir)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    lines = [f"# {args.title}", "",
             "Training: the source corpus (minus the held-out validation speakers) plus F of the target "
             "corpus; test: the other part of the target (egs/cross_corpus/README.md).", ""]
    for exp, note in zip(args.exp_dir, notes):
        lines += exp_section(exp, note, out_dir, args.condition, args.digits)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(args.out, "\n".join(lines))
    print(f"adapt_report: wrote {args.out} ({len(args.exp_dir)} experiment dirs)")
    return 0


if __name__ == "__main__":
    run_main(main)
