"""Installs the `ser` package: speech emotion recognition recipes in PyTorch."""
from setuptools import find_packages, setup

# torchaudio only works with the exact torch it was built against.
TORCH = ["torch==2.11.0", "torchaudio==2.11.0"]

setup(
    name="ser",
    version="0.1.0",
    description="Kaldi-style recipes for speech emotion recognition (SER) in PyTorch",
    packages=find_packages(include=["ser", "ser.*"]),
    python_requires=">=3.9",
    install_requires=TORCH + [
        "numpy",
        "scipy",
        "kaldiio",
        "soundfile",
        "sentencepiece",
        "transformers",
        "pyyaml",
        "tqdm",
        "matplotlib",
    ],
    extras_require={"test": ["pytest"]},
)
