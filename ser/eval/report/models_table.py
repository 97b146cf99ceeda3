"""'## Models': per model and corpus its features, augmentation, epochs, folds x seeds and
training time; then how the runs fitted (ser.eval.fit)."""
from ser.eval.conditions import sort_key as condition_sort_key
from ser.eval.fit import fit_summary
from ser.eval.report.markdown import hms, table
from ser.eval.train_time import train_time


def models_section(layout):
    L = ["## Models", "", "Training time: sum of the per-epoch times in history.tsv over the runs "
         "(folds × seeds) behind the row; per run: their mean.", ""]
    rows, fit_rows = [], []
    any_averaged = False
    for t in layout.tags:
        d = layout.tag_desc[t]
        for c in layout.corpora:
            ss = [s for s in layout.summaries if s.tag == t and s.corpus == c]
            if not ss:
                continue
            s = sorted(ss, key=lambda x: condition_sort_key(x.condition))[0]
            fit = fit_summary(s)
            if fit:
                mark = " ‡" if fit["averaged"] > 0 else ""
                any_averaged = any_averaged or bool(mark)
                fit_rows.append([layout.labels[t], c, f"{fit['best_epoch']:.1f}", f"{100 * fit['valid_uar']:.1f}{mark}",
                                 f"{fit['train_loss']:.2f}", f"{fit['valid_loss']:.2f}{mark}",
                                 f"{fit['min_train_loss']:.2f}", str(fit["runs"])])
            tt = train_time(s)
            ep = "–" if tt["mean_epochs"] is None else f"{tt['mean_epochs']:.1f}"
            rows.append([layout.labels[t], f"`{t}`", c, d.get("features"), d.get("augmentation"),
                         d.get("max_epochs", "?"), ep,
                         f"{len(s.folds)} × {len(s.seed_uar)}",
                         f"{s.n} {s.mode}", hms(tt["total"]), hms(tt["per_run"])])
    L += table(["Model", "tag", "corpus", "features", "augmentation", "max epochs", "epochs (mean)",
                "folds × seeds", "± over", "train time", "per run"], rows) + [""]
    if fit_rows:
        L += ["How the runs fitted (history.tsv; means over the runs): the selected epoch (best validation "
              "UAR), the training and validation loss there, and the lowest training loss of the run. A high "
              "training loss at the selected epoch means underfitting; a low one with a validation loss far "
              "above it, overfitting (egs/README.md, 'Sizing a training config'). Each run's curves: "
              "history.png next to its history.tsv."
              + (" ‡: the validation UAR and loss of the mean of each run's best epochs' weights (config "
                 "`average_best`, averaged.tsv), the model.pt of those runs; the other columns are the best "
                 "epoch's." if any_averaged else ""), ""]
        L += table(["Model", "corpus", "selected epoch", "valid UAR there (%)", "train loss there",
                    "valid loss there", "lowest train loss", "runs"], fit_rows) + [""]
    return L
