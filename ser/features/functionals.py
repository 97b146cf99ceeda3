"""Utterance-level acoustic functionals of openSMILE: ComParE 2016 and eGeMAPS v02.

The standard hand-crafted SER feature sets: ComParE 2016 (Schuller et al., Interspeech 2016:
6373 statistics of 65 frame-level descriptors: energy, spectral shape, MFCCs, F0, voicing,
jitter, shimmer, HNR, and their deltas) and eGeMAPS v02 (Eyben et al., IEEE TAC 2016: 88
prosodic, voice-quality and spectral parameters). They are the usual utterance-level baseline of
SER papers and challenges, and carry prosody and voice quality that a CNN on a 2-3 s log-mel
segment has to learn from few examples.

The output is one "frame" per utterance, (1, dim), so the data dirs, training (segments of one
frame), scoring and fusion of the recipes treat it like any other feature type; the `mlp` model
(ser/models/mlp.py) is the classifier meant for it. The extraction is openSMILE's own
(`opensmile`, audEERING's Python package; openSMILE's research licence applies), at 16 kHz
after this package's resampling. openSMILE is imported on first use: its import pulls in pandas.
"""
import numpy as np

from ser.errors import SerError
from ser.features.base import FeatureExtractor

#: feature set name -> number of functionals
FEATURE_SETS = {"ComParE_2016": 6373, "eGeMAPSv02": 88}


class Functionals(FeatureExtractor):
    """openSMILE functionals of the whole signal, float32 (1, dim)."""

    TYPE = "functionals"
    PARAMS = {
        "sample_rate": (int, 16000),
        "feature_set": (str, "ComParE_2016"),
    }

    def __init__(self, **params):
        super().__init__(**params)
        name = self.params["feature_set"]
        if name not in FEATURE_SETS:
            raise SerError(f"feature_set must be one of {sorted(FEATURE_SETS)}, got '{name}'")
        self.dim = FEATURE_SETS[name]
        # One 60 ms ComParE frame (its longest analysis window): shorter signals give no frames
        # and openSMILE returns NaN for every functional.
        self.min_samples = int(0.06 * self.sample_rate)
        self._smile = None

    @classmethod
    def label(cls, config):
        """The set, e.g. 'ComParE_2016': both sets share the type."""
        return str(config.get("feature_set", cls.PARAMS["feature_set"][1]))

    def num_frames(self, num_samples):
        return 1 if num_samples >= self.min_samples else 0

    def smile(self):
        """The openSMILE extractor, built once per object (building it parses the config)."""
        if self._smile is None:
            try:
                import opensmile
            except ImportError as e:
                raise SerError(f"feature type 'functionals' needs the opensmile package "
                               f"(tools/install.sh installs it): {e}") from None
            self._smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, self.params["feature_set"]),
                                          feature_level=opensmile.FeatureLevel.Functionals)
        return self._smile

    def feature_names(self):
        """The openSMILE name of each column, in output order."""
        return list(self.smile().feature_names)

    def compute(self, wave):
        values = self.smile().process_signal(wave.astype(np.float32), self.sample_rate).to_numpy()
        if values.shape != (1, self.dim):
            raise SerError(f"openSMILE {self.params['feature_set']} returned shape {values.shape}, "
                           f"expected (1, {self.dim})")
        if not np.all(np.isfinite(values)):
            raise SerError(f"openSMILE {self.params['feature_set']} returned non-finite values "
                           f"(a signal without frames?)")
        return values.astype(np.float64)
