"""The models x augmentations view of one corpus that paper 1's Tables 2-3 and Figure 2 use
(augmentation settings in the order of ser.augment.settings)."""
from ser.augment.settings import order as aug_sort_key
from ser.eval.report.layout import model_sort_key


def model_grid(summaries, descs, corpus):
    """Returns (columns, augs, cells) of one corpus: columns = model names in paper order (with
    the features added when the corpus has runs on several feature types), augs = the
    augmentation keys present, in aug_sort_key order, cells = (aug, column, condition) -> list of
    summaries (more than one only when several tags share model, features and augmentation, e.g.
    after a config change)."""
    ss = [s for s in summaries if s.corpus == corpus]
    d = {s.tag: descs[(corpus, s.tag)] for s in ss}
    feats = {str(x.get("features")) for x in d.values()}
    column, colkey = {}, {}
    for t, x in d.items():
        column[t] = str(x.get("model")) + (f" ({x.get('features')})" if len(feats) > 1 else "")
        colkey[column[t]] = model_sort_key(dict(x, augmentation="none", name=""))[:2] + (str(x.get("features")),)
    columns = sorted(set(column.values()), key=lambda c: colkey[c])
    augs = sorted({str(x.get("aug_key") or "none") for x in d.values()}, key=aug_sort_key)
    cells = {}
    for s in ss:
        aug = str(d[s.tag].get("aug_key") or "none")
        cells.setdefault((aug, column[s.tag], s.condition), []).append(s)
    return columns, augs, cells


def grid_cell(found, cell_fn):
    """The text of a grid cell: '–', the one summary's cell_fn, or each summary's with its tag."""
    if not found:
        return "–"
    if len(found) == 1:
        return cell_fn(found[0])
    return "; ".join(f"{cell_fn(s)} (`{s.tag}`)" for s in found)


def corpora_with(summaries, condition_test):
    """The corpora (first-seen order) with a condition that passes condition_test."""
    return list(dict.fromkeys(s.corpus for s in summaries if condition_test(s.condition)))
