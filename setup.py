"""Installs the `ser` package: speech emotion recognition recipes in PyTorch.

The distribution is called `ser-recipes` (the name `ser` is taken on PyPI by an unrelated
project); the import name stays `ser`.
"""
from setuptools import find_packages, setup

# torchaudio only works with the exact torch it was built against.
TORCH = ["torch==2.11.0", "torchaudio==2.11.0"]

setup(
    name="ser-recipes",
    version="0.1.0",
    description="Kaldi-style recipes for speech emotion recognition (SER) in PyTorch",
    packages=find_packages(include=["ser", "ser.*"]),
    python_requires=">=3.9",
    install_requires=TORCH + [
        "numpy",
        "kaldiio",
        "soundfile",
        "sentencepiece",
        "transformers",
        "pyyaml",
        "tqdm",
        "matplotlib",
        "opensmile",  # feature type `functionals` (ComParE / eGeMAPS), ser/features/functionals.py
    ],
    # scipy: only the tests' independent references use it; tensorboard: optional curve logging;
    # librosa: only bench/feats_librosa_baseline.py (the reference loop of bench/bench_feats.sh).
    extras_require={"test": ["pytest", "scipy"], "tensorboard": ["tensorboard"], "bench": ["librosa"]},
    entry_points={"console_scripts": ["ser-infer = ser.bin.infer:cli"]},
)
