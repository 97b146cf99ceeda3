"""Quality report of synthetic mel data against real data (paper 2, Table 1 and Fig. 2).

    python -m ser.bin.diffusion_report --real-feats data/all_mel --utt-list data/all_folds/1/train.list \\
        --synthetic exp/.../fold.1/syn_s50_n1 --out exp/.../fold.1/syn_s50_n1/report [--griffin-lim 2]

Writes into --out:
- mad.tsv / mad.json: per emotion, MAD of the synthetic segments to the mean real segment of that
  emotion, with the real-to-mean baseline and the nearest-real-segment MAD, and the harmonicity
  (pitch-harmonic structure of the low mel bands) of the synthetic and real segments and of
  white noise (definitions in ser/diffusion/quality.py; mad.json repeats them);
- mel_grid.png: per emotion, real and synthetic 80 x 256 segments side by side;
- with --griffin-lim N: audio/<emotion>_{real,synthetic}_<k>.wav, Griffin-Lim reconstructions of
  the first N real and synthetic segments of every emotion, for listening.
mad.json is written last and records the arguments: a re-run with the same arguments whose inputs
(the two feats.scp and the utterance list) are not newer than it exits at once ("already reported").
Real utterances are those of --utt-list in --real-feats; both sides are cut into
--segment-length frame windows (shift --segment-shift, padded with -1 = silence) as the
diffusion model was trained.
"""
import json
import os
import sys

import kaldiio
import numpy as np

from ser.audio import write_wav
from ser.data.atomic import atomic_write_text
from ser.data.cli import non_negative_int, positive_int
from ser.data.fold_dir import read_utt_list
from ser.data.json_file import records
from ser.data.kvfile import read_kv
from ser.diffusion.data import check_mel_range
from ser.diffusion.quality import __doc__ as MAD_DOC
from ser.diffusion.quality import griffin_lim, harmonicity_table, mad_table, mel_grid_png
from ser.errors import SerError, run_main
from ser.runtime.run_args import program_parser
from ser.runtime.segments import segment_matrix
from ser.training.dataset import read_feat_conf

REPORT_FILE, TABLE_FILE = "mad.json", "mad.tsv"   # mad.json written last
COLUMNS = ("emotion", "n_real", "n_synthetic", "mad", "mad_real", "mad_nearest",
           "harmonicity", "harmonicity_real", "harmonicity_noise")


def get_parser():
    p = program_parser("ser.bin.diffusion_report", "MAD, spectrogram grid and Griffin-Lim audio of synthetic mel data.")
    p.add_argument("--real-feats", required=True, help="real mel data dir (feats.scp, utt2emo [, conf.yaml])")
    p.add_argument("--utt-list", required=True, help="real utterances to compare with (e.g. a fold's train.list)")
    p.add_argument("--synthetic", required=True, help="synthetic data dir written by ser.bin.generate")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--griffin-lim", type=non_negative_int, default=0, metavar="N",
                   help="write Griffin-Lim audio of N real and N synthetic segments per emotion")
    p.add_argument("--griffin-lim-iters", type=positive_int, default=32, help="Griffin-Lim iterations")
    p.add_argument("--per-emotion", type=positive_int, default=2, help="real and synthetic segments per emotion in the PNG")
    p.add_argument("--segment-length", type=positive_int, default=256)
    p.add_argument("--segment-shift", type=positive_int, default=128)
    return p


def segments_by_emotion(feats_dir, utts, length, shift):
    """dict emotion -> (n, n_mels, length) segments of `utts` (in order), padded with -1."""
    scp = os.path.join(feats_dir, "feats.scp")
    table = kaldiio.load_scp(scp)
    utt2emo = read_kv(os.path.join(feats_dir, "utt2emo"))
    out = {}
    for utt in utts:
        if utt not in table:
            raise SerError(f"{scp}: no features for '{utt}'")
        if utt not in utt2emo:
            raise SerError(f"{os.path.join(feats_dir, 'utt2emo')}: no emotion for '{utt}'")
        mat = np.asarray(table[utt], dtype=np.float32)
        check_mel_range(mat, f"{scp}: '{utt}'")
        out.setdefault(utt2emo[utt], []).append(segment_matrix(mat, length, shift, -1.0).transpose(0, 2, 1))
    return {e: np.concatenate(v) for e, v in out.items()}


def reported_with(out, arguments, inputs):
    """Whether OUT holds a complete report (mad.tsv, then mad.json last) made with ARGUMENTS and not
    older than any of the INPUTS files (a regenerated set or recomputed features are reported anew)."""
    path = os.path.join(out, REPORT_FILE)
    if not os.path.exists(os.path.join(out, TABLE_FILE)) or not records(path, arguments):
        return False
    try:
        return os.path.getmtime(path) >= max(os.path.getmtime(p) for p in inputs)
    except OSError:   # an input is missing: the report is made (and fails naming it)
        return False


def main(argv=None):
    args = get_parser().parse_args(argv)
    for name in ("griffin_lim", "per_emotion"):
        if getattr(args, name) < 0:
            raise SerError(f"--{name.replace('_', '-')} must be >= 0")
    real_utts = read_utt_list(args.utt_list)
    if not real_utts:
        raise SerError(f"{args.utt_list}: no utterances")
    arguments = {"real_feats": args.real_feats, "utt_list": args.utt_list, "synthetic": args.synthetic,
                 "segment": {"length": args.segment_length, "shift": args.segment_shift, "pad_value": -1.0},
                 "per_emotion": args.per_emotion, "griffin_lim": args.griffin_lim,
                 "griffin_lim_iters": args.griffin_lim_iters}
    inputs = [os.path.join(args.real_feats, "feats.scp"), args.utt_list, os.path.join(args.synthetic, "feats.scp")]
    if reported_with(args.out, arguments, inputs):
        print(f"{args.out}: already reported (same arguments, inputs unchanged)", file=sys.stderr)
        with open(os.path.join(args.out, TABLE_FILE), encoding="utf-8") as f:
            print("".join(f.readlines()[1:]), end="")
        return 0
    syn_utts = list(read_kv(os.path.join(args.synthetic, "feats.scp")))
    real = segments_by_emotion(args.real_feats, real_utts, args.segment_length, args.segment_shift)
    syn = segments_by_emotion(args.synthetic, syn_utts, args.segment_length, args.segment_shift)
    feat_conf = read_feat_conf(args.synthetic) or read_feat_conf(args.real_feats)
    try:
        harmonic, harmonic_note = harmonicity_table(real, syn, feat_conf), None
    except SerError as e:   # a mel too coarse to resolve harmonics: the MAD columns alone
        harmonic, harmonic_note = {}, str(e)
        print(f"diffusion_report: no harmonicity: {e}", file=sys.stderr)
    rows = [{**r, **harmonic.get(r["emotion"], {})} for r in mad_table(real, syn)]
    os.makedirs(args.out, exist_ok=True)
    if args.per_emotion > 0:
        mel_grid_png(os.path.join(args.out, "mel_grid.png"), real, syn, args.per_emotion,
                     title=f"real ({os.path.basename(args.utt_list)}) vs synthetic "
                           f"({os.path.basename(os.path.normpath(args.synthetic))})")
    if args.griffin_lim:
        audio = os.path.join(args.out, "audio")
        os.makedirs(audio, exist_ok=True)
        for emo in sorted(syn):
            for kind, segs in (("real", real.get(emo, [])), ("synthetic", syn[emo])):
                for k, seg in enumerate(segs[:args.griffin_lim]):
                    wave, sr = griffin_lim(seg, feat_conf, args.griffin_lim_iters)
                    path = os.path.join(audio, f"{emo}_{kind}_{k + 1}.wav")
                    tmp = path + ".tmp.wav"
                    write_wav(tmp, wave, sr)
                    os.replace(tmp, path)

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["\t".join(fmt(r.get(c, "-")) for c in COLUMNS) for r in rows]   # mad.tsv's rows, also printed
    atomic_write_text(os.path.join(args.out, TABLE_FILE), "".join(l + "\n" for l in ["\t".join(COLUMNS)] + lines))
    definition = MAD_DOC.split("MAD (mean absolute difference), our precise definition.", 1)[1].strip()
    definition, harmonic_definition = definition.split("Harmonicity:", 1)
    atomic_write_text(os.path.join(args.out, REPORT_FILE), json.dumps(
        {**arguments,
         "definition": " ".join(definition.split()),
         "harmonicity_definition": " ".join(harmonic_definition.split()),
         **({"harmonicity_skipped": harmonic_note} if harmonic_note else {}), "rows": rows}, indent=1) + "\n")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    run_main(main)
