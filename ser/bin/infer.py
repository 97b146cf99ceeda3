"""Classify the emotion of audio files with a trained or packed model.

    ser-infer --model-dir DIR [--json] [--ngpu N] [--wav-scp wav.scp] a.wav b.wav ...
    (= python -m ser.bin.infer ...)

DIR is a packed model (stage 6 of the recipes: exp/<dset>/<tag>/packed, an ensemble of the
leave-one-speaker-out fold models), an experiment dir holding one, a training run (a dir with
model.pt, or the .pt file), or a Hugging Face hub id when huggingface_hub is installed (see
ser.api.EmotionClassifier, which does the work: the features, normalisation, segmentation and
posterior averaging of training and scoring). Files may have any sample rate; --wav-scp adds
the entries of a Kaldi wav.scp (paths or 'cmd |'), named by their utterance ids. Prints one line
per input:

    a.wav<TAB>anger<TAB>anger=0.81 boredom=0.02 ...

or, with --json, a JSON list of {"file", "prediction", "posteriors": {label: p}}. An input that
cannot be classified (missing, a directory, not audio, too short) is reported on stderr (and in
the JSON list as {"file", "error"}); the others are still classified, and the command then exits
with status 1 naming the failed inputs in one line.
"""
import argparse
import json
import os
import sys

from ser.data.cli import non_negative_int
from ser.errors import SerError, run_main


def get_parser():
    p = argparse.ArgumentParser(prog="ser-infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True,
                   help="packed model dir, experiment dir with packed/, run dir with model.pt, or hub id")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text lines")
    p.add_argument("--ngpu", type=non_negative_int, default=0, help="0: CPU; >0: CUDA (default 0)")
    p.add_argument("--digits", type=non_negative_int, default=2, help="decimals of the printed posteriors (default 2)")
    p.add_argument("--wav-scp", action="append", default=[], help="Kaldi wav.scp of inputs (repeatable)")
    p.add_argument("wavs", nargs="*", help="audio files")
    return p


def prog():
    """The program name run_main prints its errors with (ser-infer, infer.py)."""
    return os.path.basename(sys.argv[0]) or "ser"


def read_inputs(args):
    """[(name, entry)]: the positional files (name = the path) then the --wav-scp entries."""
    from ser.data.kvfile import read_kv

    inputs = [(p, p) for p in args.wavs]
    for scp in args.wav_scp:
        if not os.path.isfile(scp):
            raise SerError(f"--wav-scp {scp}: no such file")
        inputs += list(read_kv(scp).items())
    if not inputs:
        raise SerError("no input: give audio files or --wav-scp FILE")
    return inputs


def check_entry(name, entry):
    """SerError when a file argument cannot be audio (a pipe command 'cmd |' is tried as is)."""
    if entry.rstrip().endswith("|"):
        return
    if os.path.isdir(entry):
        raise SerError(f"{entry}: is a directory, not an audio file")
    if not os.path.isfile(entry):
        raise SerError(f"no such audio file: {entry}")


def warn_near_empty(name, entry):
    """A warning line for audio that is classified but hardly holds speech (very short, all
    zero, truncated): its prediction says little (ser.data.prepare.audio_problems)."""
    from ser.data.prepare import audio_problems

    for kind in audio_problems({name: entry}):
        print(f"{prog()}: warning: {name}: audio {kind}: the prediction says little", file=sys.stderr)


def main(argv=None):
    args = get_parser().parse_args(argv)
    from ser.api import EmotionClassifier
    from ser.runtime.device import inference_device

    inputs = read_inputs(args)
    clf = EmotionClassifier.from_dir(args.model_dir, inference_device(args.ngpu))
    results, bad = [], []
    for name, entry in inputs:
        try:
            check_entry(name, entry)
            warn_near_empty(name, entry)
            post = clf.posteriors({name: clf.entry_features(entry)})[name]
        except SerError as e:  # reported now; the other files are still classified
            print(f"{prog()}: {name}: {e}" if name != entry else f"{prog()}: {e}", file=sys.stderr, flush=True)
            bad.append(name)
            if args.json:
                results.append({"file": name, "error": str(e)})
            continue
        pred = clf.prediction(post)
        if args.json:
            results.append({"file": name, "prediction": pred.label, "posteriors": pred.probabilities})
        else:
            scores = " ".join(f"{c}={p:.{args.digits}f}" for c, p in pred.probabilities.items())
            print(f"{name}\t{pred.label}\t{scores}", flush=True)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
    if bad:
        raise SerError(f"{len(bad)} of {len(inputs)} inputs not classified: {' '.join(bad)}")
    return 0


def cli():
    """The `ser-infer` console command (setup.py entry point)."""
    run_main(main)


if __name__ == "__main__":
    run_main(main)
