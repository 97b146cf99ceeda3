"""Pack an experiment's leave-one-speaker-out fold models into one deployable model directory
(stage 6 of the recipes).

    python -m ser.bin.pack --exp-dir exp/all/<tag> [--out exp/all/<tag>/packed]
        [--condition test_clean] [--corpus-note "EmoDB (2.0 s copy)"]

The packed model is the ensemble of every fold x seed model of the experiment (each fold.K/seedS
must have finished training and been scored on --condition): its posterior is the mean of the
members' utterance posteriors (ser.api.EmotionClassifier). Why an ensemble and not one model
retrained on all speakers: it needs no extra training, it is made of exactly the models whose
leave-one-speaker-out scores RESULTS.md reports, and a retrained model would have no validation
speaker to select its epoch on.

OUT holds models/fold.K.seedS.pt (the fold models, ser-model-v1 files with their own
normalisation statistics), feats.yaml (the feature config), normalization.json (each member's
CMVN mean and std and its utterance_mvn), classes.txt, config.yaml (the resolved training config of the first member;
the others differ only in per-fold data paths and seed), pack.json (format, members, scores, inputs)
and README.md (the model card). OUT is built beside itself and renamed into place; a re-run
whose inputs (member models and scores) are unchanged says "already packed" and does nothing.
"""
import argparse
import hashlib
import json
import os
import shutil
from datetime import datetime

import yaml

from ser.api import PACK_FILE, PACK_FORMAT, PACKED_SUBDIR
from ser.data.atomic import atomic_write_text, building_dir
from ser.data.checksum import file_hexdigest
from ser.errors import SerError, run_main
from ser.eval.aggregate import FOLD_RE, SEED_RE, collect_runs, corpus_name, summarize

def get_parser():
    p = argparse.ArgumentParser(prog="pack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="experiment dir exp/<dset>/<tag> holding fold.K/seedS runs")
    p.add_argument("--out", default=None, help=f"output dir (default: EXP/{PACKED_SUBDIR})")
    p.add_argument("--condition", default="test_clean", help="scored condition whose LOSO scores the card reports")
    p.add_argument("--corpus-note", default=None, help="corpus and copy, e.g. 'EmoDB (2.0 s copy)'")
    return p


def member_runs(exp_dir):
    """[(fold, seed, run dir)] of every fold.K/seedS, checked to have finished training."""
    runs = []
    for fold_name in sorted(os.listdir(exp_dir)):
        fm = FOLD_RE.match(fold_name)
        if not fm or not os.path.isdir(os.path.join(exp_dir, fold_name)):
            continue
        for seed_name in sorted(os.listdir(os.path.join(exp_dir, fold_name))):
            sm = SEED_RE.match(seed_name)
            run = os.path.join(exp_dir, fold_name, seed_name)
            if not sm or not os.path.isdir(run):
                continue
            for name in ("done", "model.pt"):
                if not os.path.exists(os.path.join(run, name)):
                    raise SerError(f"{run}: training has not finished (no {name}): run stage 3")
            runs.append((int(fm.group(1)), int(sm.group(1)), run))
    if not runs:
        raise SerError(f"{exp_dir}: no fold.K/seedS runs to pack")
    return sorted(runs)


def inputs_signature(runs, condition, corpus_note):
    """sha1 over the member models, their scores and the card's note: what the pack depends on."""
    h = hashlib.sha1(f"{condition}\n{corpus_note}\n".encode())
    for fold, seed, run in runs:
        for name in ("model.pt", os.path.join(condition, "metrics.json")):
            h.update(f"{fold} {seed} {name} {file_hexdigest(os.path.join(run, name), 'sha1')}\n".encode())
    return h.hexdigest()


def already_packed(out, signature):
    try:
        with open(os.path.join(out, PACK_FILE), encoding="utf-8") as f:
            return json.load(f).get("inputs_sha1") == signature
    except (OSError, ValueError):
        return False


def loso_summary(exp_dir, runs, condition):
    """The aggregate.Summary of `condition` over the members (the numbers of RESULTS.md)."""
    tag = os.path.basename(os.path.normpath(exp_dir))
    scored = [r for r in collect_runs(os.path.dirname(os.path.abspath(exp_dir)))
              if r.tag == tag and r.condition == condition]
    have = {(r.fold, r.seed) for r in scored}
    for fold, seed, run in runs:
        if (fold, seed) not in have:
            raise SerError(f"{run}/{condition}: not scored (no metrics.json with done): run stage 4")
    (summary,) = summarize(scored)
    return summary


def read_members(runs):
    """[(name, meta)] of the member models, checked to be one experiment."""
    from ser.training.model_io import read_model_file

    members = []
    for fold, seed, run in runs:
        meta = read_model_file(os.path.join(run, "model.pt"))["meta"]
        members.append((f"fold.{fold}.seed{seed}", meta))
    first_name, first = members[0]
    for name, meta in members[1:]:
        # not config_hash: per-fold data (synthetic dirs of paper 2) is part of it
        for key in ("classes", "feat_conf", "model_name", "model_conf", "feat_dim", "segment"):
            if meta.get(key) != first.get(key):
                raise SerError(f"{name}: '{key}' differs from {first_name}'s: not one experiment")
    return members


def _num(x):
    """nan (a std over one value) -> None: pack.json stays strict JSON."""
    return None if x is None or x != x else float(x)


def pct(x):
    return "–" if x is None or x != x else f"{100 * x:.1f}"


def model_card(tag, corpus, corpus_note, members, summary, revision, date, condition):
    meta = members[0][1]
    feat = meta["feat_conf"]
    seg = meta["segment"]
    folds = sorted(summary.folds)
    seeds = sorted(summary.seed_uar)
    spread = "seeds (each the mean over its folds)" if summary.mode == "seeds" else "folds"
    def std(s):
        return "" if s is None or s != s else f" ± {100 * s:.1f}"
    L = [f"# Emotion classifier: {meta['model_name']} on {feat.get('type')} features, {corpus}", "",
         f"Packed by `python -m ser.bin.pack` (stage 6 of the recipe) on {date} from commit `{revision}`, "
         f"experiment `{tag}`.", "",
         "## What it is", "",
         f"The **ensemble of the {len(members)} leave-one-speaker-out fold models** of the experiment "
         f"({len(folds)} folds × {len(seeds)} seed(s)); nothing was retrained. Each member normalises the "
         "features with the statistics of its own training speakers, cuts them into segments as in "
         "training and averages its segment posteriors; the ensemble **averages the members' "
         "posteriors** and predicts their argmax.", "",
         "## Data", "",
         f"- Corpus: {corpus_note or corpus} (data set `{corpus}`).",
         f"- Classes ({len(meta['classes'])}, output order): {', '.join(meta['classes'])}.",
         f"- Features: `{feat.get('type')}` at {feat.get('sample_rate', '?')} Hz, {meta['feat_dim']} "
         f"dimensions (`feats.yaml`); segments of {seg['length']} frames, shift {seg['shift']}.",
         f"- Model: `{meta['model_name']}` (`config.yaml`, the resolved training config; the members "
         "differ only in per-fold data paths such as `data.fold_dir`, and `seed`).", "",
         f"## Leave-one-speaker-out scores ({condition})", "",
         f"- UAR {pct(summary.uar_mean)}{std(summary.uar_std)} %, WA {pct(summary.wa_mean)}"
         f"{std(summary.wa_std)} % (mean ± sample std over {summary.n} {spread}), as in RESULTS.md.",
         "- These are the scores of the **individual fold models on their held-out test speakers**. "
         "The ensemble has no held-out speaker of its own (every speaker of the corpus trained most "
         "members), so it was not scored as a whole: on new speakers it is expected to do at least as "
         "well as one fold model, but that is not measured here.", "",
         "| fold | test speaker | UAR (%) | WA (%) |", "|---|---|---|---|"]
    for f in folds:
        L.append(f"| {f} | {', '.join(summary.fold_speakers.get(f, [])) or '?'} | {pct(summary.fold_uar.get(f))} "
                 f"| {pct(summary.fold_wa.get(f))} |")
    L += ["", "## Use", "", "```python",
          "from ser import EmotionClassifier",
          "clf = EmotionClassifier.from_dir(\"path/to/this/dir\")   # or a Hugging Face hub id",
          "label, probs = clf.classify_file(\"a.wav\")              # any sample rate",
          "preds = clf.classify_batch([wave1, wave2], 16000)", "```", "", "```bash",
          "ser-infer --model-dir path/to/this/dir a.wav b.wav        # --json, --wav-scp wav.scp", "```", "",
          "## Files", "",
          "| file | content |", "|---|---|",
          f"| `{PACK_FILE}` | format `{PACK_FORMAT}`, the member list, the scores above, a checksum of the inputs |",
          "| `models/fold.K.seedS.pt` | the fold models (`ser-model-v1`: weights, classes, feature config, "
          "normalisation statistics, training config) |",
          "| `feats.yaml` | the feature config (as in `conf/feats/`) |",
          "| `normalization.json` | each member's per-dimension mean and std (from its training speakers) "
          "and its per-utterance normalisation (`utterance_mvn`, applied first) |",
          "| `classes.txt` | the classes in output order |",
          "| `config.yaml` | the resolved training config |", ""]
    return "\n".join(L)


def write_pack(out, exp_dir, runs, members, summary, corpus_note, condition, signature):
    from ser.eval.report.header import git_revision
    from ser.training import config as TC

    tag = os.path.basename(os.path.normpath(exp_dir))
    corpus = corpus_name(os.path.dirname(os.path.abspath(exp_dir)))
    date = datetime.now().strftime("%Y-%m-%d %H:%M")
    revision = git_revision(exp_dir)
    with building_dir(out) as tmp:
        os.makedirs(os.path.join(tmp, "models"))
        files = []
        for (fold, seed, run), (name, _) in zip(runs, members):
            files.append(f"models/{name}.pt")
            shutil.copyfile(os.path.join(run, "model.pt"), os.path.join(tmp, files[-1]))
        meta = members[0][1]
        atomic_write_text(os.path.join(tmp, "feats.yaml"), yaml.safe_dump(dict(meta["feat_conf"]), sort_keys=False))
        atomic_write_text(os.path.join(tmp, "classes.txt"), "".join(c + "\n" for c in meta["classes"]))
        off = TC.DEFAULTS["utterance_mvn"]   # models trained before the option have no key: off
        norm = {name: {"mean": m["cmvn_mean"], "std": m["cmvn_std"], "utterance_mvn": m.get("utterance_mvn", off)}
                for name, m in members}
        atomic_write_text(os.path.join(tmp, "normalization.json"), json.dumps(norm) + "\n")
        with open(os.path.join(runs[0][2], "config.yaml"), encoding="utf-8") as f:
            config = f.read()
        atomic_write_text(os.path.join(tmp, "config.yaml"), config)
        atomic_write_text(os.path.join(tmp, "README.md"),
                          model_card(tag, corpus, corpus_note, members, summary, revision, date, condition))
        pack = {"format": PACK_FORMAT, "combine": "mean of the members' utterance posteriors",
                "members": files, "classes": list(meta["classes"]), "model": meta["model_name"],
                "tag": tag, "corpus": corpus, "corpus_note": corpus_note, "condition": condition,
                "loso": {"uar_mean": _num(summary.uar_mean), "uar_std": _num(summary.uar_std),
                         "wa_mean": _num(summary.wa_mean), "wa_std": _num(summary.wa_std),
                         "over": f"{summary.n} {summary.mode}"},
                "revision": revision, "date": date, "inputs_sha1": signature}
        # pack.json last: a directory without it is not a packed model (ser.api looks for it)
        atomic_write_text(os.path.join(tmp, PACK_FILE), json.dumps(pack, indent=2) + "\n")
    return pack


def main(argv=None):
    args = get_parser().parse_args(argv)
    exp_dir = args.exp_dir
    if not os.path.isdir(exp_dir):
        raise SerError(f"--exp-dir {exp_dir}: no such directory")
    out = args.out or os.path.join(exp_dir, PACKED_SUBDIR)
    runs = member_runs(exp_dir)
    summary = loso_summary(exp_dir, runs, args.condition)
    signature = inputs_signature(runs, args.condition, args.corpus_note or "")
    if already_packed(out, signature):
        print(f"pack: {out}: already packed (member models and scores unchanged)")
        return 0
    members = read_members(runs)
    pack = write_pack(out, exp_dir, runs, members, summary, args.corpus_note, args.condition, signature)
    print(f"pack: {out}: {len(members)} fold models, LOSO UAR {pct(pack['loso']['uar_mean'])} % "
          f"({args.condition})")
    return 0


if __name__ == "__main__":
    run_main(main)
