"""Aggregate scored experiments into a RESULTS.md report.

    python -m ser.bin.report --exp-dir EXP [--exp-dir EXP2 ...] --out RESULTS.md [--title T]
        [--corpus-note "EmoDB (2.0 s copy), 7 classes" ...] [--protocol-note TEXT] [--notes FILE] [--fig-dir DIR]

Finds EXP/<tag>/fold.<k>/seed<s>/<condition>/metrics.json (with `done`), aggregates per tag and
condition (per seed: mean over folds; mean ± sample std over seeds when there are >= 2 seeds,
else over folds; see ser.eval.aggregate), writes an aggregated confusion matrix PNG per tag and
condition (EXP/<tag>/confusion_<condition>.png, or into --fig-dir) and the markdown report
(ser.eval.report), atomically. --corpus-note is given once per --exp-dir (in the same
order) or once for all.

With noisy (test_snrN) or attacked (test_fgsm, test_bim) conditions the report adds tables in
the layout of paper 1's Tables 2 and 3; a grouped UAR bar chart like its Figure 2
(uar_<corpus>_<condition>.png, next to --out) is written and linked for every corpus and
condition with more than one model or augmentation. An experiment dir with diffusion models
(EXP/diffusion_*/fold.<k>, paper 2) adds a section on them: training and sampling settings and
times, MAD per emotion over folds and the real-vs-synthetic mel grid (ser.eval.report.synthetic).
"""
import argparse
import os

from ser.data.atomic import atomic_write_text
from ser.data.cli import non_negative_int
from ser.errors import SerError, run_main
from ser.eval.aggregate import collect_runs, corpus_name, summarize, tag_config
from ser.eval.report.bar_charts import write_uar_bar_charts
from ser.eval.report.confusions import write_aggregated_confusions
from ser.eval.report.document import render
from ser.eval.report.layout import ReportInputs
from ser.eval.report.markdown import pm


def get_parser():
    p = argparse.ArgumentParser(prog="report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", action="append", required=True, help="experiment directory (repeatable)")
    p.add_argument("--out", required=True, help="markdown file to write (e.g. RESULTS.md)")
    p.add_argument("--title", default="Speech emotion recognition results", help="report title")
    p.add_argument("--corpus-note", action="append", default=[],
                   help="description of the corpus of each --exp-dir, e.g. 'EmoDB (2.0 s copy), 7 classes'")
    p.add_argument("--protocol-note", default=None, help="extra line for the protocol section")
    p.add_argument("--notes", default=None, metavar="FILE",
                   help="markdown file shown as the '## Notes' section after the protocol (e.g. local/results_note.md)")
    p.add_argument("--folds-note", default=None,
                   help="how the folds were made (default: the leave-one-speaker-out sentence)")
    p.add_argument("--fig-dir", default=None, help="write aggregated confusion PNGs here instead of EXP/<tag>/")
    p.add_argument("--digits", type=non_negative_int, default=1, help="decimals of percentages (default 1)")
    p.add_argument("--allow-partial", action="store_true",
                   help="report rows with folds not scored yet, marked as partial (default: an error)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if len(args.corpus_note) not in (0, 1, len(args.exp_dir)):
        raise SerError(f"give --corpus-note once or once per --exp-dir ({len(args.exp_dir)}), "
                       f"not {len(args.corpus_note)} times")
    notes = args.corpus_note * len(args.exp_dir) if len(args.corpus_note) == 1 else args.corpus_note
    runs, exp_dirs, corpus_notes = [], {}, {}
    for i, exp in enumerate(args.exp_dir):
        corpus = corpus_name(exp)
        if corpus in exp_dirs:
            raise SerError(f"--exp-dir {exp}: corpus name '{corpus}' already used by {exp_dirs[corpus]}")
        exp_dirs[corpus] = exp
        if notes:
            corpus_notes[corpus] = notes[i]
        found = collect_runs(exp, corpus)
        if not found:
            raise SerError(f"{exp}: no scored runs (<tag>/fold.<k>/seed<s>/<condition>/metrics.json with done)")
        runs += found
    notes = None
    if args.notes:
        try:
            with open(args.notes, encoding="utf-8") as f:
                notes = f.read()
        except OSError as e:
            raise SerError(f"--notes {args.notes}: {e.strerror}")
    summaries = summarize(runs)
    for s in summaries:
        if s.missing_folds and not args.allow_partial:
            raise SerError(f"{exp_dirs[s.corpus]}/{s.tag}: {s.condition}: folds "
                           f"{' '.join(map(str, s.missing_folds))} of "
                           f"{len(s.folds) + len(s.missing_folds)} not scored (run stage 4, or "
                           f"give --allow-partial to report the row marked as partial)")
    descs = {}
    for s in summaries:
        if (s.corpus, s.tag) not in descs:
            descs[(s.corpus, s.tag)] = tag_config(exp_dirs[s.corpus], s.tag,
                                                  [r for r in runs if r.corpus == s.corpus and r.tag == s.tag])
    confusion_paths = write_aggregated_confusions(summaries, exp_dirs, args.fig_dir)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    bar_charts = write_uar_bar_charts(summaries, descs, out_dir)
    text = render(ReportInputs(summaries, descs, args.out, title=args.title, corpus_notes=corpus_notes,
                               protocol_note=args.protocol_note, folds_note=args.folds_note, notes=notes,
                               confusion_paths=confusion_paths, bar_charts=bar_charts, exp_dirs=exp_dirs,
                               fig_dir=args.fig_dir, digits=args.digits))
    atomic_write_text(args.out, text)
    for s in summaries:
        print(f"report: {s.corpus} {s.tag} {s.condition}: UAR {pm(s.uar_mean, s.uar_std, args.digits)} "
              f"(over {s.n} {s.mode})" + (" PARTIAL: folds " + " ".join(map(str, s.missing_folds))
                                           + " missing" if s.missing_folds else ""))
    for path in bar_charts.values():
        print(f"report: wrote {path}")
    print(f"report: wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
