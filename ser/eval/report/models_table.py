"""'## Models': per model and corpus its features, augmentation, epochs, folds x seeds and
training time."""
from ser.eval.conditions import sort_key as condition_sort_key
from ser.eval.report.markdown import hms, table
from ser.eval.train_time import train_time


def models_section(layout):
    L = ["## Models", "", "Training time: sum of the per-epoch times in history.tsv over the runs "
         "(folds × seeds) behind the row; per run: their mean.", ""]
    rows = []
    for t in layout.tags:
        d = layout.tag_desc[t]
        for c in layout.corpora:
            ss = [s for s in layout.summaries if s.tag == t and s.corpus == c]
            if not ss:
                continue
            s = sorted(ss, key=lambda x: condition_sort_key(x.condition))[0]
            tt = train_time(s)
            ep = "–" if tt["mean_epochs"] is None else f"{tt['mean_epochs']:.1f}"
            rows.append([layout.labels[t], f"`{t}`", c, d.get("features"), d.get("augmentation"),
                         d.get("max_epochs", "?"), ep,
                         f"{len(s.folds)} × {len(s.seed_uar)}",
                         f"{s.n} {s.mode}", hms(tt["total"]), hms(tt["per_run"])])
    L += table(["Model", "tag", "corpus", "features", "augmentation", "max epochs", "epochs (mean)",
                "folds × seeds", "± over", "train time", "per run"], rows) + [""]
    return L
