"""The reference point of bench/bench_feats.sh: a plain single-process librosa loop doing the work of
stage 1's feature extraction (both types) on a list of WAV files.

    python3 bench/feats_librosa_baseline.py [--res-type soxr_hq] [--out-dir DIR] WAV...

For every file: read it once (soundfile), then
- spec (egs/TEMPLATE/conf/feats/spec.yaml): resample to 16 kHz with librosa.resample, STFT with a
  periodic Hamming window of 400 samples in 512-point frames every 160 samples (the signal padded
  by 56 zeros at each end so that librosa's centred window covers exactly the snip-edges frames
  [160 t, 160 t + 400) of ser.features.spectrogram), log(power + 1e-8) of the lowest 128 bins;
- mel (egs/TEMPLATE/conf/feats/mel.yaml): at the file's 22.05 kHz, reflect-pad 384 samples, STFT
  1024/256 with a periodic Hann window, magnitudes, 80 Slaney mel bands 0-8 kHz
  (librosa.feature.melspectrogram), log(max(mel, 1e-5)) mapped linearly to [-1, 1].
The resampling is librosa's default (soxr_hq) unless --res-type says otherwise; torchaudio's
band-limited sinc is not among librosa's methods, so its cost differs from stage 1's own. Threads
are the libraries' (bench_feats.sh also runs it with OMP/OPENBLAS/MKL_NUM_THREADS=1: on a busy
machine the default OpenBLAS threads spin and multiply the CPU time without doing more work).

With --out-dir DIR, writes DIR/<type>.npz (one array per file stem) so the output can be compared
with stage 1's. Prints one line to stderr: files, audio seconds, frames per type. librosa is an
optional bench dependency (pip install -e .[bench]); nothing in ser/ imports it.
"""
import argparse
import math
import os
import sys

import librosa
import numpy as np
import soundfile as sf


def spec_features(y16):
    pad = (512 - 400) // 2
    stft = librosa.stft(np.pad(y16, pad), n_fft=512, hop_length=160, win_length=400,
                        window="hamming", center=False)[:128]  # (bins, frames)
    power = stft.real ** 2 + stft.imag ** 2
    return np.log(power + 1e-8).T.astype(np.float32)


def mel_features(y22, sr):
    pad = (1024 - 256) // 2
    mel = librosa.feature.melspectrogram(
        y=np.pad(y22, pad, mode="reflect"), sr=sr, n_fft=1024, hop_length=256, win_length=1024,
        window="hann", center=False, power=1.0, n_mels=80, fmin=0.0, fmax=8000.0, htk=False,
        norm="slaney")
    lo, hi = math.log(1e-5), math.log(10.0)
    scaled = (np.log(np.maximum(mel, 1e-5)) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(scaled, -1.0, 1.0).T.astype(np.float32)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res-type", default="soxr_hq", help="librosa.resample res_type (default soxr_hq)")
    p.add_argument("--out-dir", help="write spec.npz and mel.npz here")
    p.add_argument("wavs", nargs="+")
    args = p.parse_args(argv)
    out = {"spec": {}, "mel": {}}
    seconds = 0.0
    for path in args.wavs:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        seconds += len(y) / sr
        y16 = librosa.resample(y, orig_sr=sr, target_sr=16000, res_type=args.res_type)
        y22 = y if sr == 22050 else librosa.resample(y, orig_sr=sr, target_sr=22050,
                                                     res_type=args.res_type)
        stem = os.path.splitext(os.path.basename(path))[0]
        out["spec"][stem] = spec_features(y16)
        out["mel"][stem] = mel_features(y22, 22050)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        for ftype, mats in out.items():
            np.savez(os.path.join(args.out_dir, f"{ftype}.npz"), **mats)
    frames = {t: sum(m.shape[0] for m in mats.values()) for t, mats in out.items()}
    print(f"feats_librosa_baseline.py: {len(args.wavs)} files, {seconds:.1f} s of audio, "
          f"frames: spec {frames['spec']}, mel {frames['mel']} (res_type {args.res_type})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
