"""report.py's section on synthetic data (paper 2): diffusion settings, times, MAD over folds, mel grid."""
import json
import os
import re

import numpy as np
import yaml

from ser.eval.report.synthetic import read_history, synthetic_section

EMOTIONS = ("anger", "sadness")
CONFIG = {"process": {"steps": 4000, "schedule": "cosine", "vlb_weight": 0.001},
          "denoiser": {"preset": "cpu", "channels": 192}, "conditioner": {"type": "sentencepiece"},
          "batch_size": 16, "optim": {"lr": 2e-4}, "max_steps": 100}


def write_fold(ddir, k, mads, done=True):
    """Fold k of a diffusion tree: 100 steps logged at 50 (2 steps/s) and 100 (5 steps/s) = 35 s."""
    fdir = os.path.join(ddir, f"fold.{k}")
    os.makedirs(os.path.join(fdir, "syn_s50_n1", "report"))
    with open(os.path.join(fdir, "config.yaml"), "w") as f:
        yaml.safe_dump(dict(CONFIG, data={"fold_dir": f"data/all_folds/{k}"}), f)
    with open(os.path.join(fdir, "history.tsv"), "w") as f:
        f.write("step\tlr\tloss\tmse\tvb\tsteps_per_s\n50\t0.0002\t1.0\t0.9\t0.1\t2.0\n100\t0.0002\t0.5\t0.4\t0.1\t5.0\n")
    if done:
        open(os.path.join(fdir, "done"), "w").close()
    sdir = os.path.join(fdir, "syn_s50_n1")
    with open(os.path.join(sdir, "synthetic.yaml"), "w") as f:
        yaml.safe_dump({"sampling_steps": 50, "num_per_combination": 1}, f)
    with open(os.path.join(sdir, "utt2spk"), "w") as f:
        f.write("".join(f"syn-{i} 03\n" for i in range(10 + k)))
    # MAD real = MAD / (k + 1): the ratio differs per fold, so its mean is not a ratio of means
    rows = [{"emotion": e, "n_real": 20, "n_synthetic": 10, "mad": m, "mad_real": m / (k + 1), "mad_nearest": m + 0.1}
            for e, m in zip(EMOTIONS, mads)]
    rows.append({"emotion": "all", "n_real": 40, "n_synthetic": 20, "mad": float(np.mean(mads)),
                 "mad_real": float(np.mean(mads)) / (k + 1), "mad_nearest": float(np.mean(mads)) + 0.1})
    with open(os.path.join(sdir, "report", "mad.json"), "w") as f:
        json.dump({"rows": rows}, f)
    with open(os.path.join(sdir, "report", "mel_grid.png"), "wb") as f:
        f.write(b"\x89PNG fold %d" % k)
    os.makedirs(os.path.join(ddir, "log"), exist_ok=True)
    with open(os.path.join(ddir, "log", f"generate_syn_s50_n1.{k}.log"), "w") as f:
        f.write(f"# python3 -m ser.bin.generate\n# Accounting: time={60 * k} threads=1\n# Ended (code 0)\n")


def test_section_shows_harmonicity_where_the_reports_have_it(tmp_path):
    """Per emotion: synthetic, real and noise harmonicity over the models, and the share of real
    speech's structure above noise, per model: (0.32 - 0.30) / (0.44 - 0.30) and (0.37 - 0.30) / (0.44 - 0.30)."""
    exp = tmp_path / "exp" / "all"
    ddir = str(exp / "diffusion_abcd1234")
    for k, h in ((1, 0.32), (2, 0.37)):
        write_fold(ddir, k, (0.3, 0.4))
        path = os.path.join(ddir, f"fold.{k}", "syn_s50_n1", "report", "mad.json")
        with open(path) as f:
            info = json.load(f)
        for r in info["rows"]:
            r.update(harmonicity=h, harmonicity_real=0.44, harmonicity_noise=0.30)
        with open(path, "w") as f:
            json.dump(info, f)
    text = "\n".join(synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "R.md")))
    assert "Harmonicity per emotion, `syn_s50_n1`" in text
    shares = [(0.32 - 0.30) / 0.14, (0.37 - 0.30) / 0.14]
    row = f"| all | 0.345 ± 0.035 | 0.440 ± 0.000 | 0.300 ± 0.000 | {np.mean(shares):.2f} ± {np.std(shares, ddof=1):.2f} |"
    assert row in text
    # reports made before harmonicity existed: no table
    write_fold(str(tmp_path / "old" / "diffusion_ef"), 1, (0.3, 0.4))
    assert "Harmonicity" not in "\n".join(synthetic_section({"c": str(tmp_path / "old")}, str(tmp_path / "R.md")))


def test_history_gives_last_step_and_time_at_each_interval_rate(tmp_path):
    h = tmp_path / "history.tsv"
    h.write_text("step\tlr\tloss\tmse\tvb\tsteps_per_s\n50\t1\t1\t1\t1\t2.0\n100\t1\t1\t1\t1\t5.0\n120\t1\t1\t1\t1\t4.0\n")
    assert read_history(str(h)) == (120, 50 / 2 + 50 / 5 + 20 / 4)


def test_section_aggregates_folds_and_copies_the_grid(tmp_path):
    exp = tmp_path / "exp" / "all"
    ddir = str(exp / "diffusion_abcd1234")
    mads = {1: (0.30, 0.50), 2: (0.40, 0.70), 3: (0.9, 0.9)}
    for k in (1, 2):
        write_fold(ddir, k, mads[k])
    write_fold(ddir, 3, mads[3], done=False)       # unfinished: left out
    out = tmp_path / "RESULTS.md"
    lines = synthetic_section({"emodb/all": str(exp)}, str(out), str(tmp_path / "figures"))
    text = "\n".join(lines)
    assert lines[0] == "## Synthetic data (paper 2)"
    assert "T = 4000 (cosine schedule" in text and "192 filters" in text and "max steps 100" in text
    assert "folds differ" not in text            # only data.fold_dir differs
    assert ("2 models (fold 1, 2), 100 training steps each; training time 1m10s in all, 35s per model; "
            "not finished (left out): fold 3.") in text
    assert "S = 50 strided sampling steps (ancestral, learned variance), N = 1" in text and "generation 3m00s in all, 1m30s per model" in text
    assert "Shared" not in text
    assert "11 synthetic utterances per model" in text   # (11 + 12) / 2 rounded down

    table = {l.split("|")[1].strip(): [c.strip() for c in l.strip().strip("|").split("|")[1:]]
             for l in lines if l.startswith("| ") and not l.startswith("| Emotion")}
    for i, emo in enumerate(EMOTIONS):
        v = np.array([mads[1][i], mads[2][i]])
        pm = lambda x: f"{x.mean():.3f} ± {x.std(ddof=1):.3f}"
        assert table[emo] == ["20", "10", pm(v), pm(v / np.array([2, 3])), "2.50 ± 0.71", pm(v + 0.1)]
    assert list(table) == ["anger", "sadness", "all"]

    grid = tmp_path / "figures" / "mel_grid_emodb_all_syn_s50_n1.png"
    assert grid.read_bytes() == b"\x89PNG fold 1"
    assert "](figures/mel_grid_emodb_all_syn_s50_n1.png)" in text


def test_griffin_lim_audio_of_the_grid_fold_is_copied_and_linked(tmp_path):
    exp = tmp_path / "exp" / "all"
    ddir = str(exp / "diffusion_abcd1234")
    for k in (1, 2):
        write_fold(ddir, k, (0.3, 0.5))
        audio = os.path.join(ddir, f"fold.{k}", "syn_s50_n1", "report", "audio")
        os.makedirs(audio)
        for name in ("anger_real_1", "anger_synthetic_2", "anger_synthetic_1", "sadness_synthetic_1"):
            with open(os.path.join(audio, name + ".wav"), "wb") as f:
                f.write(b"RIFF %s fold %d" % (name.encode(), k))
    lines = synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "RESULTS.md"), str(tmp_path / "figures"))
    copied = tmp_path / "figures" / "audio_emodb_all_syn_s50_n1"
    assert sorted(p.name for p in copied.iterdir()) == [
        "anger_real_1.wav", "anger_synthetic_1.wav", "anger_synthetic_2.wav", "sadness_synthetic_1.wav"]
    assert (copied / "anger_synthetic_2.wav").read_bytes() == b"RIFF anger_synthetic_2 fold 1"
    d = "figures/audio_emodb_all_syn_s50_n1"
    assert f"- anger: real [1]({d}/anger_real_1.wav); synthetic [1]({d}/anger_synthetic_1.wav) " \
           f"[2]({d}/anger_synthetic_2.wav)" in lines
    assert f"- sadness: synthetic [1]({d}/sadness_synthetic_1.wav)" in lines


def test_folds_sharing_a_model_count_once(tmp_path):
    # run.sh: folds 1 and 2 have the same training speakers, so fold.2 -> fold.1; train_folds lists
    # the trained folds, and job i's logs belong to fold train_folds[i]
    exp = tmp_path / "exp" / "all"
    ddir = exp / "diffusion_abcd1234"
    write_fold(str(ddir), 1, (0.3, 0.5))
    write_fold(str(ddir), 3, (0.4, 0.7))
    os.symlink("fold.1", ddir / "fold.2")
    (ddir / "train_folds").write_text("1\n3\n")
    (ddir / "log" / "generate_syn_s50_n1.2.log").write_text("# Accounting: time=100 threads=1\n")  # job 2 = fold 3
    (ddir / "log" / "generate_syn_s50_n1.3.log").unlink()
    # files next to the model dirs (a job's own log, a note) are not folds or models
    (ddir / "fold.1.train.log").write_text("x\n")
    (exp / "diffusion_abcd1234.log").write_text("x\n")
    for k in range(4, 11):   # fold order is numeric: fold.10 after fold.4
        os.symlink("fold.3", ddir / f"fold.{k}")
    text = "\n".join(synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "R.md")))
    assert "2 models (fold 1, 3)" in text and "generation 2m40s in all, 1m20s per model" in text
    shared = [ln for ln in text.splitlines() if ln.startswith("- Shared: ")][0]
    assert [int(k) for k in re.findall(r"fold (\d+) uses", shared)] == [2, 4, 5, 6, 7, 8, 9, 10]
    assert "- Shared: fold 2 uses fold 1's model and samples" in text
    # synthetic.yaml's own record wins; a log of a run that only found the samples complete is no time
    info = ddir / "fold.1" / "syn_s50_n1" / "synthetic.yaml"
    info.write_text(yaml.safe_dump({"sampling_steps": 50, "num_per_combination": 1, "sampling_seconds": 130.4}))
    (ddir / "log" / "generate_syn_s50_n1.2.log").write_text(
        "x: already generated (same arguments)\n# Accounting: time=2 threads=1\n")
    text = "\n".join(synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "R.md")))
    assert "generation 2m10s in all, 2m10s per model (1 of 2 models recorded it)." in text
    info.write_text(yaml.safe_dump({"sampling_steps": 50, "num_per_combination": 1}))
    (ddir / "log" / "generate_syn_s50_n1.1.log").write_text("x: already generated (same arguments)\n")
    text = "\n".join(synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "R.md")))
    assert "per model (mean) over 2 models; generation time not recorded." in text
    assert "mean ± std over 2 models" in text


def test_no_section_without_diffusion_models(tmp_path):
    (tmp_path / "exp" / "all" / "spec_cnn_none_12345678").mkdir(parents=True)
    assert synthetic_section({"emodb/all": str(tmp_path / "exp" / "all")}, str(tmp_path / "R.md")) == []


def test_augmentation_labels_of_paper_2_settings():
    from ser.eval.aggregate import describe

    def label(cfg):
        return describe(cfg, {}, "tag")["augmentation"]

    syn = {"augmentation": "syn", "data": {"train_source": "synthetic", "synthetic_dirs": ["exp/d/fold.1/syn_s50_n1"]}}
    both = {"augmentation": "real+syn+mixup", "data": {"train_source": "both"}, "mixup": {"enabled": True, "alpha": 0.2}}
    assert label({"augmentation": "none", "data": {"train_source": "real"}}) == "none"
    assert label(syn) == "synthetic only"
    assert label(both) == "real + synthetic + mixup α=0.2"
    assert label({"data": {"aug_dirs": ["d/all_noisy"]}}) == "copies from all_noisy"


def test_denoiser_width_comes_from_its_preset_when_not_given():
    from ser.eval.report.synthetic import describe_diffusion

    assert "cpu preset, 192 filters" in describe_diffusion({"denoiser": {"preset": "cpu"}})
    assert "paper preset, 1536 filters" in describe_diffusion({"denoiser": {"preset": "paper"}})
    assert "paper preset, 64 filters" in describe_diffusion({"denoiser": {"preset": "paper", "channels": 64}})


def test_training_data_table_has_paper_2_rows_per_model():
    from types import SimpleNamespace as S

    from ser.eval.report.synthetic import training_data_table

    def summ(tag, cond, uar, wa, corpus="emodb/all4"):
        return S(corpus=corpus, tag=tag, condition=cond, uar_mean=uar, uar_std=0.1, wa_mean=wa, wa_std=float("nan"),
                 fold_uar={1: uar - 0.1, 2: uar + 0.1})

    descs = {("emodb/all4", t): {"model": m, "features": f, "aug_key": a} for t, m, f, a in (
        ("mel_cnn_blstm_real_syn_2", "cnn_blstm", "mel", "real_syn"),
        ("mel_cnn_blstm_none_1", "cnn_blstm", "mel", "none"),
        ("mel_cnn_blstm_syn_3", "cnn_blstm", "mel", "syn"),
        ("spec_densenet_sp_4", "densenet", "spec", "sp"),        # paper 1: not in this table
        ("spec_densenet_none_5", "densenet", "spec", "none"))}   # no synthetic run: no rows
    descs[("emodb/all", "mel_cnn_blstm_syn_9")] = {"model": "cnn_blstm", "features": "mel", "aug_key": "syn"}
    summaries = [summ("mel_cnn_blstm_real_syn_2", "test_clean", 0.642, 0.67),
                 summ("mel_cnn_blstm_none_1", "test_snr0", 0.3, 0.31),
                 summ("mel_cnn_blstm_none_1", "test_clean", 0.585, 0.638),
                 summ("mel_cnn_blstm_syn_3", "test_clean", 0.316, 0.312),
                 summ("spec_densenet_sp_4", "test_clean", 0.7, 0.7),
                 summ("spec_densenet_none_5", "test_clean", 0.68, 0.7),
                 summ("mel_cnn_blstm_syn_9", "test_clean", 0.99, 0.99, corpus="emodb/all")]
    lines = training_data_table("emodb/all4", summaries, descs)
    rows = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines if l.startswith("| ")]
    assert rows[0] == ["Model", "training data", "tag", "UAR test_clean", "WA test_clean",
                       "UAR test_snr0", "WA test_snr0", "UAR test_clean − real, paired"]
    # paired over folds 1, 2: both differ by the difference of the means (stderr 0)
    assert rows[1:] == [
        ["cnn_blstm (mel)", "real", "`mel_cnn_blstm_none_1`", "58.5 ± 10.0", "63.8", "30.0 ± 10.0", "31.0", "–"],
        ["cnn_blstm (mel)", "synthetic only", "`mel_cnn_blstm_syn_3`", "31.6 ± 10.0", "31.2", "–", "–",
         "-26.9 ± 0.0 (better in 0 of 2)"],
        ["cnn_blstm (mel)", "real + synthetic", "`mel_cnn_blstm_real_syn_2`", "64.2 ± 10.0", "67.0", "–", "–",
         "+5.7 ± 0.0 (better in 2 of 2)"]]
    assert training_data_table("emodb/all4", summaries[4:6], descs) == []


def test_description_carries_the_diffusion_model_behind_the_synthetic_data(tmp_path):
    """A classifier trained on samples carries its diffusion model's config and sampling settings
    (from synthetic.yaml), also when the tree moved and synthetic.yaml's model_dir is gone."""
    from ser.eval.aggregate import describe

    exp = tmp_path / "egs" / "emodb" / "exp" / "all4"
    ddir = str(exp / "diffusion_ab12")
    write_fold(ddir, 1, (0.3, 0.4))
    syn_yaml = os.path.join(ddir, "fold.1", "syn_s50_n1", "synthetic.yaml")
    with open(syn_yaml, "w") as f:
        yaml.safe_dump({"model_dir": "/moved/away/fold.1", "sampling_steps": 50, "num_per_combination": 1}, f)
    cfg = {"augmentation": "real+syn", "data": {"train_source": "both",
                                                 "synthetic_dirs": ["exp/all4/diffusion_ab12/fold.1/syn_s50_n1"]}}
    config = describe(cfg, {}, "mel_cnn_blstm_real_syn_1", str(exp))["config"]
    assert config["diffusion"]["max_steps"] == 100 and config["diffusion"]["sampling_steps"] == 50
    assert "data" not in config["diffusion"] and config["data"] == cfg["data"]
    assert "diffusion" not in describe({"augmentation": "none"}, {}, "t", str(exp))["config"]


def test_two_synthetic_sources_of_one_setting_get_a_row_each():
    """Two real + synthetic runs whose samples came from diffusion models trained for different
    numbers of steps: each keeps its own numbers, labelled by the setting they differ in."""
    from types import SimpleNamespace as S

    from ser.eval.report.synthetic import training_data_table

    def summ(tag, uar):
        # 3 folds: per-fold values uar - 0.05, uar, uar + 0.05 (the real row's fold 3 is missing)
        folds = {1: uar - 0.05, 2: uar, 3: uar + 0.05} if tag != "none_1" else {1: 0.60, 2: 0.65}
        return S(corpus="c", tag=tag, condition="test_clean", uar_mean=uar, uar_std=0.1, wa_mean=uar,
                 wa_std=float("nan"), fold_uar=folds)

    def desc(aug, steps=None):
        config = {"model": "cnn_blstm"} if steps is None else {"model": "cnn_blstm", "diffusion": {"max_steps": steps}}
        return {"model": "cnn_blstm", "features": "mel", "aug_key": aug, "config": config}

    descs = {("c", "none_1"): desc("none"), ("c", "rs_a"): desc("real_syn", 8000), ("c", "rs_b"): desc("real_syn", 3000)}
    lines = training_data_table("c", [summ("none_1", 0.645), summ("rs_a", 0.66), summ("rs_b", 0.615)], descs)
    rows = [[c.strip() for c in l.strip().strip("|").split("|")][1:] for l in lines if l.startswith("| ")]
    # paired over folds 1 and 2 only; differences (0.61 - 0.60, 0.66 - 0.65) and (0.565 - 0.60, 0.615 - 0.65)
    assert [r[:3] + r[4:] for r in rows[1:]] == [
        ["real", "`none_1`", "64.5 ± 10.0", "–"],
        ["real + synthetic (diffusion.max_steps 8000)", "`rs_a`", "66.0 ± 10.0", "+1.0 ± 0.0 (better in 2 of 2)"],
        ["real + synthetic (diffusion.max_steps 3000)", "`rs_b`", "61.5 ± 10.0", "-3.5 ± 0.0 (better in 0 of 2)"]]


def test_each_row_is_paired_with_the_real_run_of_its_own_precision():
    """Real and real + synthetic, each in fp32 and in bf16: a row's paired column is against the real
    run whose config is closest to its own (same precision), not against whichever sorts first."""
    from types import SimpleNamespace as S

    from ser.eval.report.synthetic import training_data_table

    def summ(tag, folds):
        return S(corpus="c", tag=tag, condition="test_clean", uar_mean=sum(folds.values()) / 2, uar_std=0.1,
                 wa_mean=0.5, wa_std=float("nan"), fold_uar=folds)

    def desc(aug, precision):
        config = {"model": "cnn_blstm", "precision": precision, "optim": {"lr": 0.001}}
        if aug != "none":
            config["diffusion"] = {"max_steps": 8000}
        return {"model": "cnn_blstm", "features": "mel", "aug_key": aug, "config": config}

    descs = {("c", "none_a"): desc("none", "bf16"), ("c", "none_b"): desc("none", "fp32"),
             ("c", "rs_a"): desc("real_syn", "fp32"), ("c", "rs_b"): desc("real_syn", "bf16")}
    summaries = [summ("none_a", {1: 0.50, 2: 0.50}), summ("none_b", {1: 0.60, 2: 0.60}),
                 summ("rs_a", {1: 0.70, 2: 0.70}), summ("rs_b", {1: 0.55, 2: 0.55})]
    lines = training_data_table("c", summaries, descs)
    rows = {r[1]: r for r in ([c.strip() for c in l.strip().strip("|").split("|")][1:]
                              for l in lines if l.startswith("| "))}
    assert rows["`rs_a`"][0] == "real + synthetic (precision fp32)"
    assert rows["`rs_a`"][-1].startswith("+10.0 ± 0.0")     # 0.70 - 0.60 (fp32 real), not 0.70 - 0.50
    assert rows["`rs_b`"][-1].startswith("+5.0 ± 0.0")      # 0.55 - 0.50 (bf16 real)
    assert rows["`none_a`"][-1] == rows["`none_b`"][-1] == "–"


def test_two_diffusion_trees_of_a_corpus_keep_their_own_grids(tmp_path):
    """A corpus with diffusion models of two configs: one heading for the corpus, one block per
    tree with its own training steps, and grids under distinct names (neither overwrites the other)."""
    exp = tmp_path / "exp" / "all4"
    for name, steps in (("diffusion_aaaa1111", 100), ("diffusion_bbbb2222", 200)):
        write_fold(str(exp / name), 1, (0.3, 0.4))
        with open(exp / name / "fold.1" / "config.yaml", "w") as f:
            yaml.safe_dump(dict(CONFIG, max_steps=steps), f)
        with open(exp / name / "fold.1" / "syn_s50_n1" / "report" / "mel_grid.png", "wb") as f:
            f.write(name.encode())
    text = "\n".join(synthetic_section({"emodb/all4": str(exp)}, str(tmp_path / "R.md"), str(tmp_path / "figures")))
    assert text.count("### emodb/all4\n") == 1
    blocks = text.split("#### Diffusion models ")[1:]
    assert [b.split("\n")[0] for b in blocks] == ["`diffusion_aaaa1111`", "`diffusion_bbbb2222`"]
    assert "max steps 100" in blocks[0] and "max steps 200" in blocks[1]
    for name in ("diffusion_aaaa1111", "diffusion_bbbb2222"):
        grid = tmp_path / "figures" / f"mel_grid_emodb_all4_{name}_syn_s50_n1.png"
        assert grid.read_bytes() == name.encode()


def test_a_selection_between_training_data_settings_is_its_own_row():
    """A per-fold choice between real and real + synthetic (tag.yaml `setting`, its config the first
    candidate's) gets a row under its setting, and the paired column stays against the real run."""
    from types import SimpleNamespace as S

    from ser.eval.report.synthetic import training_data_table

    def summ(tag, folds):
        return S(corpus="c", tag=tag, condition="test_clean", uar_mean=sum(folds.values()) / 2, uar_std=0.1,
                 wa_mean=0.5, wa_std=float("nan"), fold_uar=folds)

    base = {"model": "cnn_blstm", "features": "mel", "config": {}}
    descs = {("c", "a_real"): dict(base, aug_key="none"), ("c", "b_rs"): dict(base, aug_key="real_syn"),
             ("c", "0_sel"): dict(base, aug_key="none", setting="chosen per fold on validation UAR")}
    lines = training_data_table("c", [summ("a_real", {1: 0.6, 2: 0.7}), summ("b_rs", {1: 0.7, 2: 0.6}),
                                      summ("0_sel", {1: 0.7, 2: 0.7})], descs)
    rows = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines if l.startswith("| ")]
    assert [(r[1], r[2], r[-1]) for r in rows[1:]] == [
        ("real", "`a_real`", "–"),
        ("real + synthetic", "`b_rs`", "+0.0 ± 10.0 (better in 1 of 2)"),
        ("chosen per fold on validation UAR", "`0_sel`", "+5.0 ± 5.0 (better in 1 of 2)")]


def test_autoguidance_is_named_when_used():
    from ser.eval.report.synthetic import describe_diffusion

    assert "autoguidance" not in describe_diffusion({"guidance": {"snapshot_step": 0, "weight": 1.0}})
    assert describe_diffusion({"guidance": {"snapshot_step": 2000, "weight": 2.0}}).endswith(
        "autoguidance guide: the EMA weights of step 2000")


def test_samples_line_names_the_guidance_weight(tmp_path):
    exp = tmp_path / "exp" / "all"
    ddir = str(exp / "diffusion_abcd1234")
    write_fold(ddir, 1, (0.3, 0.4))
    info = os.path.join(ddir, "fold.1", "syn_s50_n1", "synthetic.yaml")
    with open(info, "w") as f:
        yaml.safe_dump({"sampling_steps": 50, "num_per_combination": 1, "guidance_weight": 2.0}, f)
    text = "\n".join(synthetic_section({"emodb/all": str(exp)}, str(tmp_path / "R.md")))
    assert "S = 50 strided sampling steps (ancestral, learned variance; autoguidance w = 2), N = 1" in text
