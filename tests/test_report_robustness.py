"""report.py's paper-1 layouts: Table 2 (noise), Table 3 (attacks) and the Figure 2 bar charts,
on a synthetic experiment tree whose numbers are checked against numpy."""
import json
import os

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from eval_helpers import CLASSES
from ser.bin import report
from ser.eval.aggregate import describe
from ser.eval.report.bar_charts import bar_chart_name

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("cnn", "densenet_lstm_highway")
AUGS = ("none", "sp_mixup")
CONDITIONS = ("test_clean", "test_snr0", "test_snr10", "test_fgsm", "test_bim")
ATTACK = {"test_fgsm": {"attack": "fgsm", "eps": 0.08, "alpha": None, "steps": None},
          "test_bim": {"attack": "bim", "eps": 0.08, "alpha": 0.01, "steps": 10},
          "test_fgsm_eps0.02": {"attack": "fgsm", "eps": 0.02, "alpha": None, "steps": None},
          "test_bim_eps0.02": {"attack": "bim", "eps": 0.02, "alpha": 0.0025, "steps": 10}}


def write_run(exp, tag, fold, seed, cond, uar, model, aug):
    """One scored condition of one fold x seed, written by hand as score(_attack).py would."""
    run = os.path.join(exp, tag, f"fold.{fold}", f"seed{seed}")
    cdir = os.path.join(run, cond)
    os.makedirs(cdir, exist_ok=True)
    metrics = {"uar": uar, "wa": uar, "confusion": [[2, 1, 0], [0, 3, 1], [1, 0, 2]], "classes": CLASSES,
               "num_utts": 10, "per_class_recall": {}, "speakers": [f"s{fold}"]}
    if cond in ATTACK:
        metrics.update(ATTACK[cond], perturb_padding=False, clean_uar=0.5, clean_wa=0.5)
    with open(os.path.join(cdir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    open(os.path.join(cdir, "done"), "w").close()
    sp = aug.startswith("sp")
    cfg = {"model": model, "max_epochs": 3, "mixup": {"enabled": aug.endswith("mixup"), "alpha": 0.2},
           "data": {"feats_dir": "data/all_spec", "fold_dir": f"data/folds/{fold}",
                    "aug_dirs": ["data/all_sp0.9_spec", "data/all_sp1.1_spec"] if sp else [],
                    "aug_policy": "select" if sp else "refuse"},
           "augmentation": aug.replace("_", "+"), "seed": seed}
    with open(os.path.join(run, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f)


def make_tree(root, conditions):
    """2 models x 2 augmentations x conditions, 2 folds, 1 seed: -> (exp dir, {(model, aug, cond): [uar per fold]})."""
    exp = str(root / "egs" / "emodb" / "exp" / "all4")
    os.makedirs(root / "egs" / "emodb" / "data" / "all_spec")
    (root / "egs" / "emodb" / "data" / "all_spec" / "conf.yaml").write_text("type: spec\n")
    rng = np.random.default_rng(11)
    vals = {}
    for i, model in enumerate(MODELS):
        for j, aug in enumerate(AUGS):
            tag = f"spec_{model}_{aug}_{i}{j}ab12cd"
            for cond in conditions:
                vals[(model, aug, cond)] = [float(rng.uniform(0.2, 0.9)) for _ in (1, 2)]
                for fold in (1, 2):
                    write_run(exp, tag, fold, 1, cond, vals[(model, aug, cond)][fold - 1], model, aug)
    return exp, vals


def section(text, title):
    assert f"\n## {title}\n" in text, f"no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def block_table(block):
    """Rows of a blocked table: {(block name, row label): cells}; the header under key 'header'."""
    out, current = {}, None
    for line in block.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "header" not in out:
            out["header"] = cells
        elif cells[0].startswith("**"):
            current = cells[0].strip("*")
            assert all(c == "" for c in cells[1:])
        else:
            assert (current, cells[0]) not in out
            out[(current, cells[0])] = cells[1:]
    return out


def pm(values):
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values, ddof=1):.1f}"


def test_table2_table3_and_bar_charts(tmp_path):
    exp, vals = make_tree(tmp_path, CONDITIONS)
    out = tmp_path / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    text = out.read_text()

    noise = block_table(section(text, "Noise (paper 1, Table 2 layout)").split("### emodb/all4\n", 1)[1])
    assert noise["header"] == ["SNR (dB)", "cnn", "densenet_lstm_highway"]
    assert sorted({k[0] for k in noise if k != "header"}) == ["no augmentation", "speed perturbation + mixup"]
    assert [k[1] for k in noise if k != "header"] == ["0", "10", "0", "10"]   # SNR rows only, low to high
    for (block, aug) in (("no augmentation", "none"), ("speed perturbation + mixup", "sp_mixup")):
        for snr in ("0", "10"):
            assert noise[(block, snr)] == [pm(vals[(m, aug, f"test_snr{snr}")]) for m in MODELS]

    adv_text = section(text, "Adversarial attacks (Table 3 layout)")
    assert "units of each feature dimension's training standard deviation" in adv_text
    assert "normalised" in adv_text and "not the zero padding" in adv_text
    adv = block_table(adv_text.split("### emodb/all4\n", 1)[1])
    assert adv["header"] == ["Attack", "cnn", "densenet_lstm_highway"]
    rows = ["clean", "FGSM (ε = 0.08)", "BIM (ε = 0.08, α = 0.01, 10 steps)"]
    assert [k for k in adv if k != "header"] == [(b, r) for b in ("no augmentation", "speed perturbation + mixup")
                                                 for r in rows]
    for cond, row in zip(("test_clean", "test_fgsm", "test_bim"), rows):
        assert adv[("speed perturbation + mixup", row)] == [pm(vals[(m, "sp_mixup", cond)]) for m in MODELS]
    assert adv[("no augmentation", rows[2])][1] == pm(vals[("densenet_lstm_highway", "none", "test_bim")])

    # the main UAR table still has one row per tag with the same numbers, conditions in paper order,
    # augmentations named for people and in the order of the paper's tables
    assert f"| {pm(vals[('cnn', 'sp_mixup', 'test_snr10')])} |" in text
    uar = section(text, "UAR (%)").splitlines()
    assert uar[1] == "| Model | " + " | ".join(f"emodb/all4 {c}" for c in CONDITIONS) + " |"
    feat = uar[3].split("(", 1)[1].split(")", 1)[0]
    assert [l.split(" | ")[0] for l in uar[3:7]] == [
        f"| cnn ({feat})", f"| cnn ({feat}, speed perturbation ×0.9, ×1.1 + mixup α=0.2)",
        f"| densenet_lstm_highway ({feat})", f"| densenet_lstm_highway ({feat}, speed perturbation ×0.9, ×1.1 + mixup α=0.2)"]

    # one bar chart per condition, next to RESULTS.md, valid PNGs, linked
    charts = section(text, "UAR bar charts (paper 1, Figure 2 layout)")
    for cond in CONDITIONS:
        name = f"uar_emodb_all4_{cond[5:]}.png"
        assert bar_chart_name("emodb/all4", cond) == name
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_MAGIC and data.endswith(b"IEND\xaeB`\x82")
        img = imread(str(tmp_path / name))
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.05          # something was drawn
        assert f"({name})" in charts
    assert sorted(p.name for p in tmp_path.glob("uar_*.png")) == sorted(
        f"uar_emodb_all4_{c[5:]}.png" for c in CONDITIONS)


def test_attack_rows_at_two_radii(tmp_path):
    # run.sh --conditions "fgsm bim fgsm_eps0.02 bim_eps0.02": one row per attack and radius
    conds = ("test_clean", "test_fgsm", "test_bim", "test_fgsm_eps0.02", "test_bim_eps0.02")
    exp, vals = make_tree(tmp_path, conds)
    out = tmp_path / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    adv = block_table(section(out.read_text(), "Adversarial attacks (Table 3 layout)").split("### emodb/all4\n", 1)[1])
    rows = {"test_clean": "clean", "test_fgsm": "FGSM (ε = 0.08)", "test_fgsm_eps0.02": "FGSM (ε = 0.02)",
            "test_bim": "BIM (ε = 0.08, α = 0.01, 10 steps)", "test_bim_eps0.02": "BIM (ε = 0.02, α = 0.0025, 10 steps)"}
    assert [k[1] for k in adv if k != "header" and k[0] == "no augmentation"] == \
        [rows[c] for c in ("test_clean", "test_fgsm", "test_fgsm_eps0.02", "test_bim", "test_bim_eps0.02")]
    for cond, row in rows.items():
        assert adv[("no augmentation", row)] == [pm(vals[(m, "none", cond)]) for m in MODELS]


def test_clean_only_tree_has_no_robustness_sections(tmp_path):
    exp, vals = make_tree(tmp_path, ("test_clean",))
    out = tmp_path / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    text = out.read_text()
    assert "Table 2 layout" not in text and "Table 3 layout" not in text
    assert "## Noise" not in text and "## Adversarial" not in text and "ε" not in text
    claims = section(text, "Claims, paired per test speaker")   # Table 1's claim on clean data
    assert "| Comparison | clean |" in claims
    assert f"| A: densenet_lstm_highway − cnn (no augmentation) | " in claims
    # the clean condition still gets its Figure 2 chart (2 models x 2 augmentations)
    assert [p.name for p in tmp_path.glob("uar_*.png")] == ["uar_emodb_all4_clean.png"]
    assert "(uar_emodb_all4_clean.png)" in section(text, "UAR bar charts (paper 1, Figure 2 layout)")
    assert f"| {pm(vals[('cnn', 'none', 'test_clean')])} |" in text


def test_single_model_and_augmentation_gets_no_bar_chart(tmp_path):
    exp = str(tmp_path / "exp")
    for fold in (1, 2):
        for cond in ("test_clean", "test_snr0"):
            write_run(exp, "spec_cnn_none_abc123", fold, 1, cond, 0.5 + 0.1 * fold, "cnn", "none")
    out = tmp_path / "R.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    text = out.read_text()
    assert not list(tmp_path.glob("uar_*.png")) and "Figure 2 layout" not in text
    noise = block_table(section(text, "Noise (paper 1, Table 2 layout)"))
    assert noise[("no augmentation", "0")] == [pm([0.6, 0.7])]


def paired_reference(a, b):
    """'+m ± se (k/n)' of a - b per fold, in points, by numpy (the report's cell without bold)."""
    d = 100 * (np.asarray(a) - np.asarray(b))
    return f"{d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(len(d)):.1f} ({int((d > 0).sum())}/{len(d)})"


def test_claims_paired_per_speaker_in_every_condition(tmp_path):
    exp, vals = make_tree(tmp_path, CONDITIONS)
    out = tmp_path / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    claims = section(out.read_text(), "Claims, paired per test speaker")
    rows = {}
    for line in claims.split("### emodb/all4\n", 1)[1].splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    P = "densenet_lstm_highway"
    assert rows.pop("Comparison") == ["clean", "0 dB", "10 dB", "FGSM ε 0.08", "BIM ε 0.08"]
    expected = {f"A: {P} − cnn (no augmentation)": ((P, "none"), ("cnn", "none")),
                f"A: {P} − cnn (speed perturbation + mixup)": ((P, "sp_mixup"), ("cnn", "sp_mixup")),
                "B: cnn, speed perturbation + mixup − no augmentation": (("cnn", "sp_mixup"), ("cnn", "none")),
                f"B: {P}, speed perturbation + mixup − no augmentation": ((P, "sp_mixup"), (P, "none"))}
    assert list(rows) == list(expected)
    for label, (a, b) in expected.items():
        assert rows[label] == [paired_reference(vals[a + (c,)], vals[b + (c,)]) for c in CONDITIONS], label


def test_claim_in_bold_only_beyond_two_standard_errors(tmp_path):
    exp = str(tmp_path / "exp")
    uar = {("cnn", "test_clean"): [0.5, 0.45, 0.6], ("densenet_lstm_highway", "test_clean"): [0.8, 0.7, 0.9],
           ("cnn", "test_snr0"): [0.4, 0.3, 0.35], ("densenet_lstm_highway", "test_snr0"): [0.3, 0.5, 0.2]}
    for (model, cond), values in uar.items():
        for fold, v in enumerate(values, 1):
            write_run(exp, f"spec_{model}_none_abc123", fold, 1, cond, v, model, "none")
    out = tmp_path / "R.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    row = [l for l in section(out.read_text(), "Claims, paired per test speaker").splitlines()
           if l.startswith("| A: ")]
    # clean: differences 30, 25, 30 points (mean 28.3, se 1.7); 0 dB: -10, +20, -15 (se 10.9)
    assert row == ["| A: densenet_lstm_highway − cnn (no augmentation) | **+28.3 ± 1.7 (3/3)** | -1.7 ± 10.9 (1/3) |"]


@pytest.mark.parametrize("cfg, tag, key", [
    # the setting ser.bin.train recorded by name
    ({"augmentation": "sp+mixup", "data": {"aug_dirs": ["a_sp0.9"]}, "mixup": {"enabled": True}}, "x", "sp_mixup"),
    ({"augmentation": "mixup", "data": {"aug_dirs": []}, "mixup": {"enabled": True}}, "x", "mixup"),
    ({"augmentation": "none", "mixup": {"enabled": False}}, "spec_cnn_mixup_ab12", "none"),  # never the tag
    # a config without the name: the setting its options make; copies of unknown kind are custom
    ({"data": {"train_source": "synthetic"}}, "x", "syn"),
    ({"data": {"train_source": "both"}, "mixup": {"enabled": True}}, "x", "real_syn_mixup"),
    ({"data": {"aug_dirs": ["a_sp0.9"]}, "mixup": {"enabled": True}}, "x", "custom"),
    ({}, "spec_densenet_lstm_sp_mixup_ab12", "none"),
])
def test_aug_key(cfg, tag, key):
    assert describe(cfg, {}, tag)["aug_key"] == key


def test_table1_merges_one_setting_across_corpora():
    """Paper 1's Table 1: one row per model, one column per corpus, although each corpus's run of
    the model has its own tag (the config hash depends on the data); tags competing for the same
    cell keep separate rows."""
    from ser.eval.report.layout import row_labels, setting_labels
    from ser.eval.report.score_tables import table1_rows

    descs = {"a_x": {"model": "cnn", "features": "spec", "augmentation": "none"},
             "a_y": {"model": "cnn", "features": "spec", "augmentation": "none"},
             "b_x": {"model": "densenet", "features": "spec", "augmentation": "none"}}
    settings = setting_labels(descs)
    labels = row_labels(settings)
    assert labels == {"a_x": "cnn (spec) `a_x`", "a_y": "cnn (spec) `a_y`", "b_x": "densenet (spec)"}
    columns = [("emodb/all", "test_clean"), ("emodb/all4", "test_clean")]
    by_key = {("emodb/all", "a_x", "test_clean"): 1, ("emodb/all4", "a_y", "test_clean"): 2,
              ("emodb/all", "b_x", "test_clean"): 3}
    rows = table1_rows(["a_x", "a_y", "b_x"], settings, labels, columns, by_key)
    assert rows == [("cnn (spec)", ["a_x", "a_y"]), ("densenet (spec)", ["b_x"])]
    by_key[("emodb/all", "a_y", "test_clean")] = 4   # both runs on the same corpus: two rows
    rows = table1_rows(["a_x", "a_y", "b_x"], settings, labels, columns, by_key)
    assert rows[:2] == [("cnn (spec) `a_x`", ["a_x"]), ("cnn (spec) `a_y`", ["a_y"])]


def test_claims_pair_within_features_and_skip_ambiguous_settings():
    from types import SimpleNamespace
    from ser.eval.report.claims import comparisons, settings_of

    P = "densenet_lstm_highway"
    descs = {}
    summaries = []
    for tag, model, feat, aug in [("t1", P, "mel", "none"), ("t2", "densenet", "mel", "none"),
                                  ("t3", P, "spec", "none"), ("t4", "densenet", "spec", "sp"),
                                  ("t5", "densenet", "spec", "none"), ("t6", "densenet", "spec", "none")]:
        descs[("c", tag)] = {"model": model, "features": feat, "aug_key": aug}
        summaries.append(SimpleNamespace(corpus="c", tag=tag, condition="test_clean"))
    settings = settings_of(summaries, descs, "c")
    # densenet/spec/none comes from two tags (t5, t6): no pairing can use it
    assert sorted(settings) == [("densenet", "mel", "none", ""), ("densenet", "spec", "sp", ""),
                                (P, "mel", "none", ""), (P, "spec", "none", "")]
    assert [(label, a, b) for label, a, b in comparisons(settings)] == [
        (f"A: {P} − densenet (no augmentation) [mel]", (P, "mel", "none", ""), ("densenet", "mel", "none", ""))]


def test_claims_pair_seed_ensembles_with_ensembles_of_the_same_seeds():
    from types import SimpleNamespace
    from ser.eval.report.claims import comparisons, settings_of

    ens = "mean posterior of seeds 1 2"
    rows = [("a", "densenet", "sp", None), ("b", "densenet", "none", None), ("a_ens", "densenet", "sp", ens),
            ("b_ens", "densenet", "none", ens), ("c_ens", "densenet", "none", "mean posterior of seeds 1 2 3")]
    descs = {("c", t): {"model": m, "features": "mel", "aug_key": aug, "setting": st} for t, m, aug, st in rows}
    summaries = [SimpleNamespace(corpus="c", tag=t, condition="test_clean") for t, *_ in rows]
    pairs = comparisons(settings_of(summaries, descs, "c"))
    assert [(label, a[3], b[3]) for label, a, b in pairs] == [
        ("B: densenet, speed perturbation − no augmentation", "", ""),
        (f"B: densenet, speed perturbation − no augmentation [{ens}]", ens, ens)]
