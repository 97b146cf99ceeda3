"""Acoustic features for the recipes: a registry of extractors built from YAML configs.

    from ser.features import build_extractor, extract_all, read_feats_config
    extract = build_extractor(read_feats_config("conf/feats/spec.yaml"))
    feats = extract(wave, sample_rate)          # float32 numpy (frames, extract.dim)
    extract_mel = build_extractor(read_feats_config("conf/feats/mel.yaml"))
    feats, mel = extract_all([extract, extract_mel], wave, sample_rate)  # the same, one read

Types: `spec` (paper 1, log power spectrogram, ser.features.spectrogram) and `mel` (paper 2,
log mel scaled to [-1, 1], ser.features.mel; `mel_to_log` inverts the scaling) and `functionals`
(openSMILE's ComParE 2016 or eGeMAPS statistics of the whole utterance, one (1, dim) row,
ser.features.functionals).
"""
from ser.errors import SerError
from ser.features.base import extract_all
from ser.features.config import check_feats_config, read_feats_config
from ser.features.functionals import Functionals
from ser.features.mel import MelSpectrogram, mel_to_log
from ser.features.spectrogram import Spectrogram

#: feature type (the config's `type`) -> extractor class
EXTRACTORS = {cls.TYPE: cls for cls in (Spectrogram, MelSpectrogram, Functionals)}


def build_extractor(config, source="<config>"):
    """Validate `config` (a dict with `type`) and build its extractor. Bad keys/values raise
    SerError naming `source` (e.g. the YAML path)."""
    config = check_feats_config(config, source)
    params = {k: v for k, v in config.items() if k != "type"}
    try:
        return EXTRACTORS[config["type"]](**params)
    except SerError as e:
        raise SerError(f"{source}: {e}") from None


def feature_label(config):
    """How reports name the features of a config dict (e.g. a feats dir's conf.yaml): the
    extractor's label (the type; for functionals their set); a type unknown here is named as is."""
    cls = EXTRACTORS.get(config["type"])
    return cls.label(config) if cls else str(config["type"])


__all__ = ["EXTRACTORS", "build_extractor", "feature_label", "check_feats_config", "extract_all", "read_feats_config",
           "Functionals", "Spectrogram", "MelSpectrogram", "mel_to_log"]
