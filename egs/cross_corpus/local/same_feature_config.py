#!/usr/bin/env python3
"""Checks that feature data dirs were computed with the same feature config.

    local/same_feature_config.py FEATS_DIR FEATS_DIR ...

Each FEATS_DIR holds conf.yaml (the feature config utils/make_feats.sh stores next to
feats.scp). The configs are compared as parsed YAML (comments and key order do not matter);
the first difference is reported in one line naming both files and the key, exit 1.
A model trained on one corpus can only be tested on another's features if they are the same
features (e.g. both log spectrograms at 16 kHz with the same frames and bins).
"""
import argparse
import os

import yaml

from ser.errors import SerError, run_main


def read_conf(feats_dir):
    path = os.path.join(feats_dir, "conf.yaml")
    if not os.path.isfile(path):
        raise SerError(f"{path}: no such file (not a feature dir made by utils/make_feats.sh?)")
    with open(path, encoding="utf-8") as f:
        try:
            conf = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(conf, dict):
        raise SerError(f"{path}: expected a mapping")
    return path, conf


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("feats_dirs", nargs="+", metavar="FEATS_DIR")
    args = p.parse_args(argv)
    ref_path, ref = read_conf(args.feats_dirs[0])
    for d in args.feats_dirs[1:]:
        path, conf = read_conf(d)
        for key in sorted(set(ref) | set(conf)):
            if ref.get(key, "<absent>") != conf.get(key, "<absent>"):
                raise SerError(f"different feature configs: {key} is {ref.get(key, '<absent>')!r} in "
                               f"{ref_path} but {conf.get(key, '<absent>')!r} in {path}; extract both "
                               f"corpora's features with the same conf/feats/*.yaml")
    return 0


if __name__ == "__main__":
    run_main(main)
