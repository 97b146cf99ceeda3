"""The score tables: UAR and WA with one row per model and one column per corpus x condition
(paper 1's Table 1 layout), UAR / WA of every fold's test speaker, and per-class recall."""
from ser.eval.report.markdown import mean_of, pct, table


def table1_rows(tags, settings, labels, columns, by_key):
    """[(label, [tags])]: one row per model setting as in paper 1's Table 1. Tags of the same
    setting on different corpora (their config hashes differ with the data) share a row; tags
    that would fill the same cell keep rows of their own, labelled with the tag."""
    groups = {}
    for t in tags:
        groups.setdefault(settings[t], []).append(t)
    rows = []
    for label, ts in groups.items():
        used = [{col for col in columns if (col[0], t, col[1]) in by_key} for t in ts]
        if len(ts) > 1 and sum(map(len, used)) == len(set().union(*used)):
            rows.append((label, ts))
        else:
            rows += [(labels[t], [t]) for t in ts]
    return rows


def score_tables_section(layout):
    """'## UAR (%)' and '## WA (%)'."""
    by_key, columns = layout.by_key, layout.columns
    header = ["Model"] + [f"{c} {cond}" for c, cond in columns]
    L = []
    for name, key in (("UAR", "uar"), ("WA", "wa")):
        L += [f"## {name} (%)", ""]
        rows = []
        for label, ts in table1_rows(layout.tags, layout.setting_labels, layout.labels, columns, by_key):
            row = [label]
            for c, cond in columns:
                s = next((by_key[(c, t, cond)] for t in ts if (c, t, cond) in by_key), None)
                row.append(layout.cell(s, getattr(s, f"{key}_mean", None), getattr(s, f"{key}_std", None)))
            rows.append(row)
        L += table(header, rows) + [""]
    return L


def per_fold_section(layout):
    """'## Per fold: <corpus> <condition>' tables: UAR / WA of each fold's test speaker."""
    digits, L = layout.digits, []
    for c, cond in layout.columns:
        ss = layout.column_summaries(c, cond)
        folds = sorted({f for s in ss for f in s.folds})
        several = any(len(s.fold_speakers.get(f) or ()) > 1 for s in ss for f in folds)
        L += [f"## Per fold: {c} {cond}", "",
              f"UAR / WA (%) of each fold's test speaker{'s' if several else ''}" +
              (", averaged over the repeats" if any(len(s.seed_uar) > 1 for s in ss) else "") + ".", ""]
        rows = []
        for f in folds:
            spk = next((", ".join(s.fold_speakers[f]) for s in ss if s.fold_speakers.get(f)), "?")
            row = [str(f), spk]
            for s in ss:
                row.append(f"{pct(s.fold_uar.get(f), digits)} / {pct(s.fold_wa.get(f), digits)}"
                           if f in s.fold_uar else "–")
            rows.append(row)
        rows.append(["mean", ""] + [f"{pct(mean_of(s.fold_uar), digits)} / {pct(mean_of(s.fold_wa), digits)}"
                                    for s in ss])
        L += table(["Fold", "Test speakers" if several else "Test speaker"] + [layout.labels[s.tag] for s in ss],
                   rows) + [""]
    return L


def per_class_section(layout):
    """'## Per-class recall (%): <corpus> <condition>' tables, from the summed confusion matrix."""
    L = []
    for c, cond in layout.columns:
        ss = layout.column_summaries(c, cond)
        L += [f"## Per-class recall (%): {c} {cond}", "",
              "From the confusion matrix summed over all folds and repeats.", ""]
        rows = [[layout.labels[s.tag]] + [pct(r, layout.digits) for r in s.per_class_recall] for s in ss]
        L += table(["Model"] + list(ss[0].classes), rows) + [""]
    return L
