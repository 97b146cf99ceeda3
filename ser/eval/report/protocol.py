"""'## Protocol': per corpus its folds and repeats, the features and epochs, what UAR, WA and
mean ± std mean in the tables, and which repeats were left out."""
from ser.eval.aggregate import DDOF, fold_info_speakers


def _count_range(sizes):
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"


def folds_description(summaries, folds):
    """How the folds split the speakers, from the test and validation speakers of each fold (info.yaml)."""
    sizes = sorted({len(s.fold_speakers[f]) for s in summaries for f in s.folds if s.fold_speakers.get(f)})
    if not sizes or sizes == [1]:
        first_runs = {}
        for s in summaries:
            for r in s.runs:
                first_runs.setdefault(r.fold, r)
        valid = sorted({len(fold_info_speakers(r, "valid_speakers")) for r in first_runs.values()} - {0})
        validates = ("another speaker validates" if valid in ([], [1]) else
                     f"{_count_range(valid)} other speakers validate")
        return (f"Leave-one-speaker-out, {len(folds)} folds (each tests on one speaker, {validates}, "
                "the rest train)")
    k = _count_range(sizes)
    return (f"Speaker-independent folds, {len(folds)} of them (each tests on {k} speakers, listed in the "
            "per-fold table; other speakers validate, the rest train)")


def _run_seeds(layout, summary):
    """The seeds behind a row: an ensemble is stored as seed1 but is made of its members' seeds."""
    desc = layout.tag_desc.get(summary.tag, {})
    return desc["ensemble_seeds"] if "ensemble_of" in desc else summary.seed_uar


def protocol_section(layout):
    inputs, summaries = layout.inputs, layout.summaries
    L = ["## Protocol", ""]
    for c in layout.corpora:
        cs = [s for s in summaries if s.corpus == c]
        folds = sorted({f for s in cs for f in s.folds})
        seeds = sorted({x for s in cs for x in _run_seeds(layout, s)})
        note = inputs.corpus_notes.get(c)
        protocol = (inputs.folds_note or folds_description(cs, folds)).rstrip(". ")
        L.append(f"- **{c}**" + (f": {note}" if note else "") + ". " + protocol +
                 f". Repeats (seeds): {len(seeds)} ({', '.join(str(x) for x in seeds)}).")
    excluded = []
    for s in summaries:
        for seed in s.excluded_seeds:
            have = sum(1 for r in s.all_runs if r.seed == seed)
            excluded.append(f"{layout.labels[s.tag]} {s.corpus} {s.condition} seed {seed} "
                            f"({have} of {len(s.folds)} folds)")
    if excluded:
        L.append("- Not counted (unfinished repeats): " + "; ".join(excluded) + ".")
    descs = layout.tag_desc.values()
    feats = sorted({str(d.get("features")) for d in descs})
    epochs = sorted({str(d.get("max_epochs")) for d in descs if d.get("max_epochs") is not None})
    L.append(f"- Features: {', '.join(feats)}. Max epochs: {', '.join(epochs) or '?'} "
             f"(early stopping and model selection on the validation set's UAR).")
    if any(((d.get("config") or {}).get("data") or {}).get("train_on") for d in descs):
        L.append("- Rows 'refit on train+valid': every run trained again, with its seed, on its fold's training "
                 "and validation speakers together, for the epochs its validation chose and with the learning "
                 "rates it used in them (ser.training.refit); model.pt is the last epoch's, nothing is "
                 "selected on them, and the test speaker stays out.")
    L.append("- UAR = unweighted average recall (mean of the per-class recalls, classes absent from a "
             "test speaker left out); WA = accuracy over utterances. Scores are utterance-level: "
             "the mean of the segment posteriors.")
    spread = {
        "seeds": "over repeats: each repeat's (seed's) value is the mean over its folds, and ± is the "
                 f"sample standard deviation (ddof={DDOF}) of these per-seed values",
        "folds": "over folds (a single repeat): ± is the sample standard deviation "
                 f"(ddof={DDOF}) of the per-fold values",
    }
    if not layout.mixed:
        L.append(f"- mean ± std {spread[next(iter(layout.modes))]}.")
    else:
        L.append(f"- mean ± std {spread['seeds']}; cells marked † have a single repeat: there ± is "
                 f"the sample standard deviation (ddof={DDOF}) over folds.")
    if layout.partial:
        L.append("- * incomplete: no repeat of this model has finished every fold yet; the values "
                 "average the folds available.")
    if inputs.protocol_note:
        L.append(f"- {inputs.protocol_note}")
    return L + [""]
