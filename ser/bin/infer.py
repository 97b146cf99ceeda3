"""Classify the emotion of audio files with a trained model.

    python -m ser.bin.infer --model-dir DIR [--json] [--ngpu N] a.wav b.wav ...

Each file is read (ser.audio.load_audio, any sample rate), turned into features with the model's
own feature config (meta["feat_conf"], the config of the feats dir it was trained on), normalised
with the model's training statistics, cut into segments, and classified by the mean of the
segment posteriors: exactly the path of training and scoring. Prints one line per file:

    a.wav<TAB>anger<TAB>anger=0.81 boredom=0.02 ...

or, with --json, a JSON list of {"file", "prediction", "posteriors": {label: p}}. A missing or
unreadable file stops with a one-line error naming it (exit status 1).
"""
import argparse
import json
import os
import sys

from ser.errors import SerError, run_main


def get_parser():
    p = argparse.ArgumentParser(prog="infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="training output dir holding model.pt (or a .pt file)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text lines")
    p.add_argument("--ngpu", type=int, default=0, help="0: CPU; >0: CUDA (default 0)")
    p.add_argument("--digits", type=int, default=2, help="decimals of the printed posteriors (default 2)")
    p.add_argument("wavs", nargs="+", help="audio files")
    return p


class Classifier:
    """A loaded model with its feature extractor: wave -> posterior over meta['classes']."""

    def __init__(self, model_dir, device="cpu"):
        from ser.features import build_extractor
        from ser.training.model_io import load_model

        self.device = device
        self.model, self.meta = load_model(model_dir, device)
        self.classes = list(self.meta["classes"])
        self.extract = build_extractor(self.meta["feat_conf"], device=device, source=f"{model_dir}: feat_conf")

    def features(self, wave, sample_rate):
        """Raw (T, D) features of a waveform, as compute_feats makes them."""
        return self.extract(wave, sample_rate)

    def posteriors(self, feats_by_name):
        """dict name -> (T, D) raw features  =>  dict name -> (C,) posterior."""
        from ser.training.inference import utterance_posteriors

        return utterance_posteriors(self.model, self.meta, feats_by_name, self.device)

    def classify_file(self, path):
        """(C,) posterior of an audio file; SerError naming the file if it cannot be used."""
        from ser.audio import load_audio

        if not os.path.isfile(path):
            raise SerError(f"no such audio file: {path}")
        wave, sr = load_audio(path)
        try:
            feats = self.features(wave, sr)
        except SerError as e:
            raise SerError(f"{path}: {e}") from None
        return self.posteriors({path: feats})[path]


def main(argv=None):
    args = get_parser().parse_args(argv)
    from ser.bin.score import select_device

    for path in args.wavs:  # fail before the model is loaded if a file is plainly missing
        if not os.path.isfile(path):
            raise SerError(f"no such audio file: {path}")
    clf = Classifier(args.model_dir, select_device(args.ngpu))
    results = []
    for path in args.wavs:
        post = clf.classify_file(path)
        best = clf.classes[int(post.argmax())]
        if args.json:
            results.append({"file": path, "prediction": best,
                            "posteriors": {c: float(p) for c, p in zip(clf.classes, post)}})
        else:
            scores = " ".join(f"{c}={p:.{args.digits}f}" for c, p in zip(clf.classes, post))
            print(f"{path}\t{best}\t{scores}", flush=True)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    run_main(main)
