"""'## Adversarial attacks (Table 3 layout)': per corpus one table, a block of rows clean /
FGSM / BIM per augmentation, one column per model (none without test_fgsm/test_bim conditions).
The attack settings (ε, α, steps) come from the scored runs' metrics.json."""
from ser.eval.conditions import CLEAN_DIR, attack_label, display_label, from_dir, is_attack
from ser.eval.conditions import sort_key as condition_sort_key
from ser.augment.settings import label as aug_name
from ser.eval.report.grid import corpora_with, grid_cell, model_grid
from ser.eval.report.markdown import table


def attack_params(summary):
    """Distinct (attack, eps, alpha, steps) of the runs behind a summary (from metrics.json)."""
    out = set()
    for r in summary.runs:
        m = r.metrics
        out.add((str(m.get("attack") or from_dir(summary.condition).attack), m.get("eps"),
                 m.get("alpha"), m.get("steps")))
    return out


def attack_section(layout):
    summaries, descs = layout.summaries, layout.inputs.descs
    corpora = corpora_with(summaries, is_attack)
    if not corpora:
        return []
    runs = [r for s in summaries if is_attack(s.condition) for r in s.runs]
    padded = sum(1 for r in runs if r.metrics.get("perturb_padding"))
    L = ["## Adversarial attacks (Table 3 layout)", "",
         "UAR (%), mean ± std as in the UAR table, under white-box attacks with the true label "
         "(paper 1 sec. 5.3): FGSM, one signed-gradient step of size ε, and BIM, steps of α clipped "
         "to the ε-ball; the clean row is the unattacked test set. ε and α are L∞ bounds on the "
         "**normalised** features, i.e. after the training set's mean/variance normalisation, so "
         "they are in units of each feature dimension's training standard deviation (not of the "
         "raw log spectrogram); values from each run's metrics.json (`eps`, `alpha`, `steps`). " +
         ("Only real frames are perturbed, not the zero padding of short segments."
          if not padded else f"In {padded} of {len(runs)} runs the zero padding of short segments "
                              f"was perturbed too (--perturb-padding)."), ""]
    for c in corpora:
        columns, augs, cells = model_grid(summaries, descs, c)
        conds = sorted({s.condition for s in summaries if s.corpus == c and (is_attack(s.condition) or
                                                                           s.condition == CLEAN_DIR)},
                       key=condition_sort_key)
        labels, mixed = {}, {}
        for cond in conds:
            params = set() if cond == CLEAN_DIR else set().union(
                *[attack_params(s) for s in summaries if s.corpus == c and s.condition == cond])
            labels[cond], mixed[cond] = display_label(cond, params), len(params) > 1

        def attack_cell(s):
            # a row that mixes settings (e.g. re-scored with another eps) says which cell has which
            if not mixed[s.condition]:
                return layout.uar_cell(s)
            return f"{layout.uar_cell(s)} ({attack_label(attack_params(s)).split(' ', 1)[1][1:-1]})"
        rows = []
        for aug in augs:
            if not any((aug, col, cond) in cells for col in columns for cond in conds if cond != CLEAN_DIR):
                continue
            rows.append([f"**{aug_name(aug)}**"] + [""] * len(columns))
            for cond in conds:
                rows.append([labels[cond]] + [grid_cell(cells.get((aug, col, cond)), attack_cell)
                                              for col in columns])
        L += [f"### {c}", ""] + table(["Attack"] + columns, rows) + [""]
    return L
