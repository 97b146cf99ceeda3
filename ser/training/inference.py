"""Segment- and utterance-level posteriors of a trained model (paper sec. 4.2).

An utterance is normalised as in training (by its own statistics with `utterance_mvn`, then by
the model's training statistics), cut into segments with the model's segment parameters, and its
posterior is the mean of its segments' softmax outputs.
`prepare_segments` is the reusable normalise+segment step (attacks work on its output).
"""
import numpy as np
import torch

from ser.runtime.precision import autocast
from ser.runtime.segments import segment_matrix
from ser.training import normalization


def prepare_segments(meta, mat):
    """Raw (T, D) matrix -> normalised (n, L, D) float32 segments, as the model was trained."""
    utt = normalization.utterance_mvn(mat, **meta.get("utterance_mvn", {}))   # absent in older models: off
    norm = normalization.apply(utt, meta["cmvn_mean"], meta["cmvn_std"])
    seg = meta["segment"]
    return segment_matrix(norm, seg["length"], seg["shift"])


@torch.no_grad()
def segment_posteriors(model, segments, device, batch_size=64, precision="fp32"):
    """Softmax posteriors (n, C) float64 numpy of the (n, L, D) `segments`; the forward pass
    runs at `precision` (ser.runtime.precision), the softmax in fp32.

    The model is run in eval mode (dropout off, batch-norm running stats); its previous mode
    is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(segments), batch_size):
            x = torch.as_tensor(np.asarray(segments[i:i + batch_size], dtype=np.float32), device=device)
            with autocast(precision, device):
                logits = model(x)
            out.append(torch.softmax(logits.float(), dim=-1).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0))


def posteriors_of_segment_sets(model, segment_sets, device, batch_size=64, precision="fp32"):
    """dict utt -> (n_utt, L, D) segments  =>  dict utt -> (C,) mean segment posterior.

    Segments of all utterances are batched together (an utterance is often one segment).
    """
    utts = list(segment_sets)
    if not utts:
        return {}
    counts = [len(segment_sets[u]) for u in utts]
    post = segment_posteriors(model, np.concatenate([segment_sets[u] for u in utts]), device, batch_size,
                              precision)
    bounds = np.cumsum([0] + counts)
    return {u: post[bounds[k]:bounds[k + 1]].mean(axis=0) for k, u in enumerate(utts)}


def utterance_posteriors(model, meta, feats, device, batch_size=64, precision="fp32"):
    """dict utt -> raw (T, D) matrix  =>  dict utt -> (C,) utterance posterior."""
    return posteriors_of_segment_sets(
        model, {u: prepare_segments(meta, m) for u, m in feats.items()}, device, batch_size, precision)
