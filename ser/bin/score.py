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

import numpy as np
from tqdm import tqdm

from ser.errors import run_main
from ser.eval.scoring import write_scores
from ser.eval.scoring_inputs import ScoringInputs, add_input_args, add_output_args, check_finished, up_to_date


def get_parser():
    p = argparse.ArgumentParser(prog="score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(p, "utterances to score, one per line (e.g. a fold's test.list)")
    add_output_args(p, 64, "segments per forward pass")
    return p


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
