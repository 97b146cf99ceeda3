"""The public inference API: a trained or packed model as an emotion classifier.

    from ser import EmotionClassifier
    clf = EmotionClassifier.from_dir("exp/all/spec_cnn_none_1a2b3c4d/packed")
    label, probs = clf.classify_file("a.wav")          # 'anger', {'anger': 0.81, ...}
    preds = clf.classify_batch([wave1, wave2], 16000)   # [Prediction(label, probabilities), ...]

`from_dir` takes a packed model (ser.bin.pack: `pack.json` and the fold models it lists), a
training run dir holding `model.pt` (or the .pt file itself), an experiment dir that holds a
`packed/` model, or, when the `huggingface_hub` package is installed and the argument is not a
local path, a Hugging Face hub id ("owner/name") whose snapshot is such a directory.

The path from audio to posterior is the one of training and scoring (stage 4): audio read with
ser.audio.load_audio at the feature config's sample rate, features from the model's own feature
config (meta["feat_conf"]), then, per member model, its own training normalisation statistics,
its segmentation and the mean of its segment posteriors (ser.training.inference). A packed
ensemble's posterior is the mean of its members' utterance posteriors.
"""
import os
import re
from typing import NamedTuple

import numpy as np

from ser.data.json_file import read_json_object
from ser.errors import SerError

PACK_FILE = "pack.json"
PACK_FORMAT = "ser-packed-v1"
PACKED_SUBDIR = "packed"     # where the recipe's stage 6 puts an experiment's packed model
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class Prediction(NamedTuple):
    """The predicted label and the posterior of every class (in the model's class order)."""
    label: str
    probabilities: dict


def resolve_model_files(path):
    """(list of model.pt paths, pack.json dict or None) of a local model argument; SerError saying
    what `path` is when it is none of the forms from_dir accepts."""
    from ser.training.model_io import MODEL_FILE

    if os.path.isfile(path):
        return [path], None
    if not os.path.isdir(path):
        raise SerError(f"no such model directory: {path}")
    for d in (path, os.path.join(path, PACKED_SUBDIR)):
        pack_path = os.path.join(d, PACK_FILE)
        if os.path.isfile(pack_path):
            pack = read_pack(pack_path)
            return [os.path.join(d, m) for m in pack["members"]], pack
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        return [os.path.join(path, MODEL_FILE)], None
    if any(re.match(r"^fold\.\d+$", n) for n in os.listdir(path)):
        raise SerError(f"{path}: an experiment dir of fold models without a packed model: pack it "
                       f"(./run.sh --stage 6, or python -m ser.bin.pack) or give one run, e.g. {path}/fold.1/seed1")
    raise SerError(f"{path}: neither a packed model ({PACK_FILE}) nor a training run ({MODEL_FILE})")


def read_pack(path):
    """The pack.json dict (SerError naming the file when it is not one)."""
    pack = read_json_object(path)
    if pack.get("format") != PACK_FORMAT or not pack.get("members"):
        raise SerError(f"{path}: not a {PACK_FORMAT} file with members")
    return pack


def _download(repo_id, revision=None):
    """Local snapshot of a Hugging Face hub model (only called when huggingface_hub is installed)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id=repo_id, revision=revision)
    except Exception as e:  # offline, unknown id, ...: one line naming the id
        raise SerError(f"cannot download '{repo_id}' from the Hugging Face hub: {type(e).__name__}: {e}") from None


def _hub_available():
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return False
    return True


class EmotionClassifier:
    """One model or an ensemble of models with the same classes and feature config."""

    def __init__(self, members, device="cpu", source="<model>", pack=None):
        """members: [(model, meta)] as ser.training.model_io.load_model returns them."""
        from ser.features import build_extractor

        if not members:
            raise SerError(f"{source}: no models")
        meta0 = members[0][1]
        for _, meta in members[1:]:
            # Members are averaged output by output and share one feature extraction.
            for key in ("classes", "feat_conf"):
                if meta[key] != meta0[key]:
                    raise SerError(f"{source}: member models differ in '{key}'")
        self.members = members
        self.device = device
        self.source = source
        self.pack = pack
        self.classes = list(meta0["classes"])
        self.feat_conf = dict(meta0["feat_conf"])
        self.extract = build_extractor(self.feat_conf, source=f"{source}: feat_conf")

    @classmethod
    def from_dir(cls, path, device="cpu", revision=None):
        """Load a packed model, a training run, or a hub id (see the module docstring)."""
        from ser.training.model_io import load_model

        path = os.fspath(path)
        if not os.path.exists(path) and _HUB_ID.match(path) and _hub_available():
            path = _download(path, revision)
        files, pack = resolve_model_files(path)
        members = []
        for f in files:
            if not os.path.isfile(f):
                raise SerError(f"{path}: member model {f} is missing")
            members.append(load_model(f, device))
        return cls(members, device, source=path, pack=pack)

    from_pretrained = from_dir   # the name Hugging Face users look for

    # --- features and posteriors ----------------------------------------------------------------
    def features(self, wave, sample_rate):
        """Raw (T, D) features of a waveform, as stage 1 (ser.bin.compute_feats) computes them."""
        return self.extract(wave, sample_rate)

    def member_posteriors(self, feats_by_name, batch_size=64):
        """dict name -> raw (T, D) features  =>  [dict name -> (C,) posterior], one per member."""
        from ser.training.inference import utterance_posteriors

        return [utterance_posteriors(model, meta, feats_by_name, self.device, batch_size)
                for model, meta in self.members]

    def posteriors(self, feats_by_name, batch_size=64):
        """dict name -> raw (T, D) features  =>  dict name -> (C,) posterior (the members' mean)."""
        per_member = self.member_posteriors(feats_by_name, batch_size)
        if len(per_member) == 1:
            return per_member[0]
        return {u: np.mean([p[u] for p in per_member], axis=0) for u in feats_by_name}

    def prediction(self, posterior):
        """Prediction of a (C,) posterior."""
        return Prediction(self.classes[int(np.argmax(posterior))],
                          {c: float(p) for c, p in zip(self.classes, posterior)})

    # --- audio in -------------------------------------------------------------------------------
    def load(self, entry):
        """Samples of a file path or wav.scp value ('cmd |') at the features' sample rate."""
        from ser.audio import load_audio

        return load_audio(entry, self.extract.sample_rate)

    def entry_features(self, entry):
        """Raw features of a file path or wav.scp value; SerError naming it if it is unusable."""
        wave, sr = self.load(entry)
        try:
            return self.features(wave, sr)
        except SerError as e:
            raise SerError(f"{entry}: {e}") from None

    def classify_file(self, path):
        """Prediction of an audio file (any sample rate); SerError naming the file if unusable."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise SerError(f"{path}: is a directory, not an audio file")
        if not os.path.isfile(path):
            raise SerError(f"no such audio file: {path}")
        return self.prediction(self.posteriors({path: self.entry_features(path)})[path])

    def classify_batch(self, waveforms, sample_rate):
        """Predictions of a list of 1-D waveforms (or the rows of a 2-D array) at `sample_rate`."""
        feats = {}
        for i, wave in enumerate(waveforms):
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1 or wave.size == 0:
                raise SerError(f"waveform {i}: expected a non-empty 1-D array, got shape {wave.shape}")
            try:
                feats[i] = self.features(wave, sample_rate)
            except SerError as e:
                raise SerError(f"waveform {i}: {e}") from None
        post = self.posteriors(feats)
        return [self.prediction(post[i]) for i in range(len(feats))]

    def __repr__(self):
        return (f"EmotionClassifier({self.source!r}, {len(self.members)} model(s), "
                f"classes={self.classes}, features={self.feat_conf.get('type')})")
