"""What the scoring programs (ser.bin.score, ser.bin.score_attack) share: their common options, the
refusal of an unfinished training, the up-to-date check of an output dir, and `ScoringInputs`
(the utterances with their true labels, the model and the features, each checked against the
model: the feature config it was trained on, the dimension). Their outputs are written by
ser.eval.scoring.write_scores.
"""
import os

import numpy as np

from ser.data.cli import non_negative_int, positive_int
from ser.data.fold_dir import read_utt_list
from ser.data.kvfile import read_kv
from ser.errors import SerError
from ser.eval.scoring import label_indices, scores_up_to_date


def add_input_args(p, utt_list_help):
    """--model-dir, --feats-dir, --utt-list."""
    p.add_argument("--model-dir", required=True, help="training output dir holding model.pt")
    p.add_argument("--feats-dir", required=True, help="data dir with feats.scp (and utt2emo)")
    p.add_argument("--utt-list", required=True, help=utt_list_help)


def add_output_args(p, batch_size, batch_help):
    """--out, --data-dir, --ngpu, --batch-size (default `batch_size`), --chunk, --allow-unfinished."""
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data-dir", default=None, help="data dir with utt2emo/utt2spk if FEATS has none")
    p.add_argument("--ngpu", type=non_negative_int, default=0, help="0: CPU; >0: CUDA (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"{batch_help} (default {batch_size})")
    p.add_argument("--chunk", type=positive_int, default=256, help="utterances loaded at a time (default 256)")
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
        from ser.runtime.allocator import keep_freed_memory
        from ser.runtime.device import inference_device
        from ser.runtime.torch_files import MODEL_FILE
        from ser.training.dataset import check_trained_features
        from ser.training.model_io import load_model

        check_finished(args)
        self.utts = read_utt_list(args.utt_list)
        if not self.utts:
            raise SerError(f"{args.utt_list}: no utterances")
        emo_path = find_table("utt2emo", args.feats_dir, args.data_dir)
        if emo_path is None:
            raise SerError(f"no utt2emo in {args.feats_dir}" + (f" or {args.data_dir}" if args.data_dir else "")
                           + " (give --data-dir)")
        keep_freed_memory()   # a scoring process's setting, as distributed.setup is a trainer's
        self.device = inference_device(args.ngpu)
        self.model, self.meta = load_model(args.model_dir, self.device)
        check_trained_features(os.path.join(args.model_dir, MODEL_FILE), self.meta["feat_conf"], args.feats_dir)
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
