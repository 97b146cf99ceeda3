"""Score a trained model under a white-box adversarial attack (Latif et al. 2020, 5.3).

    python -m ser.bin.score_attack --model-dir DIR --feats-dir FEATS --utt-list LIST \\
        --attack fgsm|bim --eps 0.08 [--alpha 0.01 --steps 10] --out OUTDIR [--ngpu N]

Each utterance is normalised and segmented as in scoring (ser.training.inference.prepare_segments),
every segment is attacked (ser.attacks) with the utterance's TRUE label, and the utterance
posterior is the mean of the softmax posteriors of its attacked segments. eps and alpha are in
units of the normalised features (training standard deviations). Only real frames are perturbed:
the zero padding that fills a short utterance's segment is added by the scorer, not part of the
input an attacker controls (--perturb-padding perturbs it too).

Writes the same outputs as ser.bin.score: OUTDIR/predictions.tsv, metrics.json (plus the keys
attack, eps, alpha, steps, clean_uar, clean_wa), confusion.png and, last, `done`.
"""
import argparse
import os

import numpy as np
from tqdm import tqdm

from ser.data.cli import positive_int
from ser.data.json_file import records
from ser.errors import SerError, run_main
from ser.eval.scoring import compute_metrics, write_scores
from ser.eval.scoring_inputs import ScoringInputs, add_input_args, add_output_args, check_finished, up_to_date


def get_parser():
    p = argparse.ArgumentParser(prog="score_attack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(p, "utterances to score, one per line")
    p.add_argument("--attack", required=True, choices=["fgsm", "bim"], help="attack method")
    p.add_argument("--eps", type=float, default=0.08, help="L-inf radius of the perturbation (default 0.08)")
    p.add_argument("--alpha", type=float, default=0.01, help="BIM step size (default 0.01)")
    p.add_argument("--steps", type=positive_int, default=10, help="BIM iterations (default 10)")
    p.add_argument("--perturb-padding", action="store_true",
                   help="also perturb the zero padding of segments shorter than the segment length")
    add_output_args(p, 32, "segments attacked at a time")
    return p


def real_frame_mask(num_frames, meta):
    """(n, L, 1) float32 mask of the real (non-padding) frames of an utterance's segments."""
    from ser.runtime.segments import segment_starts

    length, shift = meta["segment"]["length"], meta["segment"]["shift"]
    starts = segment_starts(num_frames, length, shift)
    mask = np.zeros((len(starts), length, 1), np.float32)
    for i, s in enumerate(starts):
        mask[i, :min(length, num_frames - s)] = 1.0
    return mask


def attack_settings(args):
    """The attack's parameters as stored in metrics.json."""
    return {"attack": args.attack, "eps": args.eps,
            "alpha": args.alpha if args.attack == "bim" else None,
            "steps": args.steps if args.attack == "bim" else None,
            "perturb_padding": bool(args.perturb_padding)}


def same_settings(out_dir, settings):
    """True when out_dir/metrics.json was written with these attack settings: a re-run with another
    eps (or alpha, steps) into the same directory scores again instead of keeping stale numbers."""
    return records(os.path.join(out_dir, "metrics.json"), settings)


def attack_segments(model, segments, labels, masks, attack, device, batch_size, **params):
    """Adversarial (n, L, D) float32 numpy segments; `labels` (n,) true class per segment."""
    import torch

    from ser.attacks import ATTACKS

    out = []
    for i in range(0, len(segments), batch_size):
        x = torch.as_tensor(segments[i:i + batch_size], device=device)
        y = torch.as_tensor(labels[i:i + batch_size], device=device)
        mask = None if masks is None else torch.as_tensor(masks[i:i + batch_size], device=device)
        out.append(ATTACKS[attack](model, x, y, mask=mask, **params).cpu().numpy())
    return np.concatenate(out)


def main(argv=None):
    args = get_parser().parse_args(argv)
    from ser.training.inference import prepare_segments, segment_posteriors

    if not args.eps >= 0:
        raise SerError(f"--eps must be >= 0, got {args.eps}")
    if args.attack == "bim" and (not args.alpha > 0 or args.steps < 1):
        raise SerError(f"--alpha must be > 0 and --steps >= 1, got {args.alpha} and {args.steps}")
    params = {"eps": args.eps}
    if args.attack == "bim":
        params.update(alpha=args.alpha, steps=args.steps)
    settings = attack_settings(args)
    check_finished(args)
    if same_settings(args.out, settings) and up_to_date(args):
        return 0
    inp = ScoringInputs(args)
    utts, y_true, classes, meta = inp.utts, inp.y_true, inp.classes, inp.meta
    model, device = inp.model, inp.device
    label_of = dict(zip(utts, y_true))

    post, clean_post = {}, {}
    for i in tqdm(range(0, len(utts), args.chunk), desc=f"score_attack {args.attack}", unit="chunk", leave=False):
        chunk = utts[i:i + args.chunk]
        segs, labels, masks, counts = [], [], [], []
        for u in chunk:
            m = inp.matrix(u)
            s = prepare_segments(meta, m)
            segs.append(s)
            labels.append(np.full(len(s), label_of[u], np.int64))
            masks.append(real_frame_mask(m.shape[0], meta))
            counts.append(len(s))
        segs, labels = np.concatenate(segs).astype(np.float32), np.concatenate(labels)
        masks = None if args.perturb_padding else np.concatenate(masks)
        adv = attack_segments(model, segs, labels, masks, args.attack, device, args.batch_size, **params)
        bounds = np.cumsum([0] + counts)
        for x, table in ((adv, post), (segs, clean_post)):
            p = segment_posteriors(model, x, device, args.batch_size)
            table.update({u: p[bounds[k]:bounds[k + 1]].mean(axis=0) for k, u in enumerate(chunk)})

    clean = compute_metrics(y_true, np.stack([clean_post[u] for u in utts]).argmax(axis=1), classes)
    extra = dict(inp.extra, **settings, clean_uar=clean["uar"], clean_wa=clean["wa"])
    adv_post = np.stack([post[u] for u in utts])
    adv_uar = compute_metrics(y_true, adv_post.argmax(axis=1), classes)["uar"]
    title = f"{args.attack.upper()} eps {args.eps:g}: UAR {100 * adv_uar:.1f}% (clean {100 * clean['uar']:.1f}%)"
    metrics = write_scores(args.out, utts, y_true, adv_post, classes, extra=extra, title=title)
    print(f"score_attack: {args.out}: {args.attack} eps {args.eps:g}: {len(utts)} utts  "
          f"UAR {100 * metrics['uar']:.2f}% (clean {100 * clean['uar']:.2f}%)  WA {100 * metrics['wa']:.2f}%")
    return 0


if __name__ == "__main__":
    run_main(main)
