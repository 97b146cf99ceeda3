"""Score a trained model on a list of utterances.

    python -m ser.bin.score --model-dir DIR --feats-dir FEATS --utt-list LIST --out OUTDIR
        [--data-dir DATA] [--ngpu N] [--batch-size B]

Utterance posteriors are the mean of the model's segment posteriors (ser.training.inference),
computed from FEATS/feats.scp after the model's own normalisation and segmentation. Labels come
from FEATS/utt2emo (or DATA/utt2emo). Writes OUTDIR/predictions.tsv, metrics.json (UAR, WA,
per-class recall, confusion), confusion.png and, last, `done`. A model dir without the `done` of a
finished training (ser.training.trainer) is refused unless --allow-unfinished: its model.pt is
only the best epoch so far.
"""
import argparse
import os

import numpy as np
from tqdm import tqdm

from ser.data.kvfile import read_kv
from ser.errors import SerError, run_main
from ser.eval.folds import read_utt_list
from ser.eval.scoring import scores_up_to_date, label_indices, write_scores


def get_parser():
    p = argparse.ArgumentParser(prog="score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="training output dir holding model.pt")
    p.add_argument("--feats-dir", required=True, help="data dir with feats.scp (and utt2emo)")
    p.add_argument("--utt-list", required=True, help="utterances to score, one per line (e.g. a fold's test.list)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data-dir", default=None, help="data dir with utt2emo/utt2spk if FEATS has none")
    p.add_argument("--ngpu", type=int, default=0, help="0: CPU; >0: CUDA (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="segments per forward pass (default 64)")
    p.add_argument("--chunk", type=int, default=256, help="utterances loaded at a time (default 256)")
    add_unfinished_arg(p)
    return p


def add_unfinished_arg(p):
    p.add_argument("--allow-unfinished", action="store_true",
                   help="score a model whose training has not finished (no `done` in --model-dir)")


def check_finished(args):
    """SerError unless --model-dir holds the `done` that training writes last (or
    --allow-unfinished): a killed training leaves a best-so-far model.pt that must not be
    reported as a result."""
    if args.allow_unfinished or os.path.exists(os.path.join(args.model_dir, "done")):
        return
    what = "holds no model.pt" if not os.path.exists(os.path.join(args.model_dir, "model.pt")) else \
        "has no done: its training has not finished"
    raise SerError(f"--model-dir {args.model_dir} {what} (finish it, or give --allow-unfinished)")


def find_table(name, *dirs):
    """Path of the first `<dir>/<name>` that exists among dirs (None entries skipped)."""
    for d in dirs:
        if d is not None and os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


class ScoringInputs:
    """What every scoring program needs: the utterances with their true labels, the model, and
    the features, each checked against the model (one-line errors naming the file at fault)."""

    def __init__(self, args):
        from ser.data.feats_io import ScpReader
        from ser.training.inference import inference_device
        from ser.training.model_io import load_model

        check_finished(args)
        self.utts = read_utt_list(args.utt_list)
        if not self.utts:
            raise SerError(f"{args.utt_list}: no utterances")
        emo_path = find_table("utt2emo", args.feats_dir, args.data_dir)
        if emo_path is None:
            raise SerError(f"no utt2emo in {args.feats_dir}" + (f" or {args.data_dir}" if args.data_dir else "")
                           + " (give --data-dir)")
        self.device = inference_device(args.ngpu)
        self.model, self.meta = load_model(args.model_dir, self.device)
        self.classes = list(self.meta["classes"])
        self.y_true = label_indices(self.utts, read_kv(emo_path), self.classes, source=emo_path)
        self.scp = os.path.join(args.feats_dir, "feats.scp")
        self.feats = ScpReader(self.scp)  # unreadable matrices: one-line errors naming scp:line
        missing = [u for u in self.utts if u not in self.feats]
        if missing:
            raise SerError(f"{self.scp}: no features for utterance '{missing[0]}' (from {args.utt_list})")
        self.extra = {"model_dir": args.model_dir, "feats_dir": args.feats_dir, "utt_list": args.utt_list}
        spk_path = find_table("utt2spk", args.feats_dir, args.data_dir)
        if spk_path is not None:
            utt2spk = read_kv(spk_path)
            self.extra["speakers"] = sorted({utt2spk[u] for u in self.utts if u in utt2spk})

    def matrix(self, utt):
        """The (frames, dim) features of `utt`, checked against the model's input dimension."""
        m = np.asarray(self.feats[utt])
        if m.ndim != 2 or m.shape[1] != self.meta["feat_dim"]:
            raise SerError(f"{self.scp}: utterance '{utt}' has features of shape {m.shape}, "
                           f"the model expects dimension {self.meta['feat_dim']}")
        return m


def up_to_date(args):
    """True (and says so) when args.out was scored after its model, features and list changed."""
    inputs = [os.path.join(args.model_dir, "model.pt"), os.path.join(args.feats_dir, "feats.scp"),
              args.utt_list]
    if scores_up_to_date(args.out, inputs):
        print(f"{os.path.basename(args.out)}: {args.out}: already scored")
        return True
    return False


def main(argv=None):
    args = get_parser().parse_args(argv)
    from ser.training.inference import utterance_posteriors

    check_finished(args)
    if up_to_date(args):
        return 0
    inp = ScoringInputs(args)
    post = {}
    for i in tqdm(range(0, len(inp.utts), args.chunk), desc="score", unit="chunk", leave=False):
        chunk = {u: inp.matrix(u) for u in inp.utts[i:i + args.chunk]}
        post.update(utterance_posteriors(inp.model, inp.meta, chunk, inp.device, args.batch_size))
    metrics = write_scores(args.out, inp.utts, inp.y_true, np.stack([post[u] for u in inp.utts]),
                           inp.classes, extra=inp.extra)
    print(f"score: {args.out}: {len(inp.utts)} utts  UAR {100 * metrics['uar']:.2f}%  WA {100 * metrics['wa']:.2f}%")
    return 0


if __name__ == "__main__":
    run_main(main)
