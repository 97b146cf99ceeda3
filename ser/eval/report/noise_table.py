"""'## Noise (paper 1, Table 2 layout)': per corpus one table, a block of SNR rows per
augmentation, one column per model, cells UAR mean ± std (none without test_snrN conditions)."""
from ser.eval.conditions import display_label, is_noise, sort_key as condition_sort_key
from ser.augment.settings import label as aug_name
from ser.eval.report.grid import corpora_with, grid_cell, model_grid
from ser.eval.report.markdown import table


def noise_section(layout):
    summaries, descs = layout.summaries, layout.inputs.descs
    corpora = corpora_with(summaries, is_noise)
    if not corpora:
        return []
    L = ["## Noise (paper 1, Table 2 layout)", "",
         "UAR (%), mean ± std as in the UAR table, of the models trained on clean data and tested on "
         "the test speakers' utterances with added noise at each SNR (mismatched condition, paper 1 "
         "sec. 5.2); one block per augmentation, one row per SNR, one column per model.", ""]
    for c in corpora:
        columns, augs, cells = model_grid(summaries, descs, c)
        snrs = sorted({s.condition for s in summaries if s.corpus == c and is_noise(s.condition)},
                      key=condition_sort_key)
        rows = []
        for aug in augs:
            if not any((aug, col, cond) in cells for col in columns for cond in snrs):
                continue
            rows.append([f"**{aug_name(aug)}**"] + [""] * len(columns))
            for cond in snrs:
                rows.append([display_label(cond)] +
                            [grid_cell(cells.get((aug, col, cond)), layout.uar_cell) for col in columns])
        L += [f"### {c}", ""] + table(["SNR (dB)"] + columns, rows) + [""]
    return L
