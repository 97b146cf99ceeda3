"""'## Claims, paired per test speaker': paper 1's two claims tested in every scored condition
(ser.eval.paired): A, the proposed model against each other model trained with the same
augmentation and features (Table 1 on clean data, Tables 2-3 under noise and attack); B, each
augmentation against none for the same model. Seed ensembles are compared with ensembles of the
same seeds. A row per comparison, a column per condition; under leave-one-speaker-out the
speakers' spread dwarfs most differences between settings, so only the paired difference says
which wins."""
from ser.augment.settings import label as aug_name
from ser.augment.settings import order as aug_sort_key
from ser.eval.conditions import from_dir
from ser.eval.conditions import sort_key as condition_sort_key
from ser.eval.paired import paired_difference
from ser.eval.report.attack_table import attack_params
from ser.eval.report.layout import model_sort_key
from ser.eval.report.markdown import table
from ser.models.densenet import DenseNetLstmHighway

PROPOSED = DenseNetLstmHighway.NAME   # paper 1's proposed model
SHOWN_SE = 2.0                        # a difference beyond this many standard errors is marked shown


def pair_cell(a, b, digits=1):
    """'+10.0 ± 4.4 (9/10)' of summary a minus summary b over their common test folds (points,
    mean ± standard error, folds where a is better / common folds), bold beyond SHOWN_SE standard
    errors; '–' when they share no fold."""
    d = paired_difference(a.fold_uar, b.fold_uar)
    if d is None:
        return "–"
    se = "" if d.n < 2 else f" ± {100 * d.stderr:.{digits}f}"
    text = f"{100 * d.mean:+.{digits}f}{se} ({d.better}/{d.n})"
    return f"**{text}**" if d.n >= 2 and abs(d.mean) > SHOWN_SE * d.stderr else text


def condition_header(cond, summaries):
    """'clean', '20 dB', 'FGSM ε 0.08' (the radius from the runs' metrics.json), else the name."""
    c = from_dir(cond)
    if c.kind == "noise":
        return f"{c.snr} dB"
    if c.kind == "attack":
        eps = {p[1] for s in summaries for p in attack_params(s)}
        return f"{c.attack.upper()} ε {eps.pop():g}" if len(eps) == 1 and None not in eps else c.name
    return c.name


def settings_of(summaries, descs, corpus):
    """(model, features, aug key, setting) -> {condition: summary} of one corpus (setting: '' for
    trained runs, e.g. 'mean posterior of seeds 1 2' for an ensemble); a key that several tags
    share (e.g. after a config change) is left out, since its pairing would be ambiguous."""
    tags, out = {}, {}
    for s in summaries:
        if s.corpus != corpus:
            continue
        d = descs[(corpus, s.tag)]
        key = (str(d.get("model")), str(d.get("features")), str(d.get("aug_key") or "none"), str(d.get("setting") or ""))
        tags.setdefault(key, set()).add(s.tag)
        out.setdefault(key, {})[s.condition] = s
    return {k: v for k, v in out.items() if len(tags[k]) == 1}


def comparisons(settings):
    """[(label, a, b)] of settings keys: A, the proposed model minus each other model (same
    features, augmentation and setting); B, each augmentation minus none (same model, features
    and setting)."""
    order = sorted(settings, key=lambda k: model_sort_key({"model": k[0], "aug_key": k[2], "name": k[1] + k[3]}))
    features = {k[1] for k in settings}

    def label(text, key):
        extra = [key[3]] if key[3] else []
        extra += [key[1]] if len(features) > 1 else []   # say which input a comparison is on
        return text + (f" [{'; '.join(extra)}]" if extra else "")
    a_rows, b_rows = [], []
    for model, feat, aug, setting in order:
        mine = (PROPOSED, feat, aug, setting)
        if model != PROPOSED and mine in settings:
            a_rows.append((label(f"A: {PROPOSED} − {model} ({aug_name(aug)})", mine), mine, (model, feat, aug, setting)))
        none = (model, feat, "none", setting)
        if aug != "none" and none in settings:
            b_rows.append((label(f"B: {model}, {aug_name(aug)} − no augmentation", none), (model, feat, aug, setting), none))
    a_rows.sort(key=lambda c: (c[1][3], aug_sort_key(c[1][2])))
    return a_rows + b_rows


def claims_section(layout):
    summaries, descs = layout.summaries, layout.inputs.descs
    L = []
    for c in dict.fromkeys(s.corpus for s in summaries):
        settings = settings_of(summaries, descs, c)
        pairs = comparisons(settings)
        if not pairs:
            continue
        conds = sorted({s.condition for s in summaries if s.corpus == c}, key=condition_sort_key)
        header = ["Comparison"] + [condition_header(cond, [s for s in summaries if s.corpus == c and s.condition == cond])
                                   for cond in conds]
        rows = [[label] + [pair_cell(settings[a][cond], settings[b][cond], layout.digits)
                           if cond in settings[a] and cond in settings[b] else "–" for cond in conds]
                for label, a, b in pairs]
        L += [f"### {c}", ""] + table(header, rows) + [""]
    if not L:
        return []
    return ["## Claims, paired per test speaker", "",
            f"Paper 1's claims in each scored condition: (A) its proposed model ({PROPOSED}) against "
            "each other model trained with the same augmentation (Table 1 on clean data, Tables 2-3 "
            "under noise and attack), and (B) each augmentation against none for the same model; "
            "mean posteriors of seeds (in brackets) are paired with the same seeds' ensemble. A cell "
            "is the UAR difference in points, first minus second, over the test folds both have "
            "(each fold's UAR averaged over its seeds): mean ± standard error (folds where the first "
            f"is better / folds). **Bold**: the mean exceeds {SHOWN_SE:g} standard errors, the "
            "claim's direction is shown; otherwise the folds do not separate the two.", ""] + L
