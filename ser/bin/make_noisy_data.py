"""Make noisy copies of a data dir at several SNRs (Latif et al. 2020, 5.2: mismatched noisy test).

    python -m ser.bin.make_noisy_data --noise-dir /work/shared/data/noise --snrs "0 10 20" \\
        --seed 1 [--types "kitchen park traffic"] data/all data/all

writes one data dir per SNR, DEST_PREFIX_snr<S> (data/all_snr0, data/all_snr10, ...), with:
- wav/<utt>.wav: the mixture, materialised as 16-bit PCM at the source's sample rate (the noise is
  resampled to the speech rate with ser.audio.resample);
- wav.scp pointing at those files (absolute paths);
- every other file of SRC copied unchanged (same utterance ids, speakers, labels, utt2dur, so the
  clean folds' lists apply as they are), except the feature files (feats.scp, cmvn.scp,
  utt2num_frames, conf.yaml), which describe the clean audio: extract features again;
- noise_choice: `<utt> <type> <type>/<file> <offset> <snr> <gain>`: the noise type, the file
  relative to --noise-dir, the excerpt's first sample (at the speech rate; the excerpt loops
  when the noise is shorter than the utterance), the SNR in dB, and the gain applied to the whole
  mixture to avoid clipping (1 when not needed).

Choices: for each utterance a noise type (uniform over the types), a file (uniform within the
type) and an excerpt offset are drawn from a generator seeded by (--seed, utterance id) through a
stable hash, so they do not depend on processing order or on the other utterances, and the SAME
type/file/offset is used at every SNR: the SNR conditions differ only in the noise level.

SNR: mean-square power over the whole utterance, exact before writing (ser.augment.add_noise).
A mixture whose peak exceeds 1 is scaled down as a whole (speech and noise alike), which keeps
the SNR but lowers the level; 16-bit quantisation then adds noise ~80 dB below typical speech.

Outputs are written into DEST.tmp directories that are renamed at the end, so an interrupted run
leaves no partial data dir.
"""
import argparse
import hashlib
import os
import shutil

import numpy as np
from tqdm import tqdm

from ser.audio import load_audio, write_wav
from ser.augment.noise import draw_offset, loop_excerpt, mix_at_snr
from ser.data.kvfile import read_kv, write_kv
from ser.errors import SerError, run_main

# Files describing features of the clean audio, or produced here: not copied.
SKIP_FILES = {"wav.scp", "feats.scp", "cmvn.scp", "utt2num_frames", "conf.yaml", "noise_choice"}


def get_parser():
    p = argparse.ArgumentParser(
        prog="python -m ser.bin.make_noisy_data",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noise-dir", required=True, help="directory with one sub-directory of WAVs per noise type")
    p.add_argument("--snrs", default="0 10 20", help='SNRs in dB, space separated (default: "0 10 20")')
    p.add_argument("--seed", type=int, default=1, help="random seed of the noise choices (default: 1)")
    p.add_argument("--types", default=None,
                   help="noise types (sub-directories of --noise-dir) to draw from; default: all")
    p.add_argument("--overwrite", action="store_true", help="replace existing output data dirs")
    p.add_argument("src", metavar="SRC_DATA", help="source data dir (wav.scp, utt2spk, ...)")
    p.add_argument("dest_prefix", metavar="DEST_PREFIX", help="output prefix: writes DEST_PREFIX_snr<S>")
    return p


def snr_tag(snr):
    """Directory suffix of an SNR: 0 -> 'snr0', 2.5 -> 'snr2.5', -5 -> 'snr-5'."""
    return f"snr{snr:g}"


def parse_snrs(text):
    try:
        snrs = [float(s) for s in text.split()]
    except ValueError:
        raise SerError(f"--snrs must be numbers separated by spaces, got '{text}'") from None
    if not snrs or not all(np.isfinite(snrs)):
        raise SerError(f"--snrs must list at least one finite SNR, got '{text}'")
    if len({snr_tag(s) for s in snrs}) != len(snrs):
        raise SerError(f"--snrs has duplicates: '{text}'")
    return snrs


def list_noises(noise_dir, types=None):
    """{type: [file names, sorted]} for the chosen types under noise_dir (SerError if missing/empty)."""
    if not os.path.isdir(noise_dir):
        raise SerError(f"noise dir '{noise_dir}' does not exist")
    if types is None:
        types = sorted(d for d in os.listdir(noise_dir)
                       if os.path.isdir(os.path.join(noise_dir, d)) and not d.startswith("."))
        if not types:
            raise SerError(f"noise dir '{noise_dir}' has no noise-type sub-directories")
    noises = {}
    for t in types:
        d = os.path.join(noise_dir, t)
        if not os.path.isdir(d):
            raise SerError(f"noise type '{t}': no directory '{d}'")
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(".wav"))
        if not files:
            raise SerError(f"noise type '{t}': no .wav files in '{d}'")
        noises[t] = files
    return noises


def utterance_rng(seed, utt):
    """A generator seeded from (seed, utt) by SHA-256: stable across runs, platforms and order."""
    digest = hashlib.sha256(f"{seed}\t{utt}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class NoiseBank:
    """Noise files read once and cached at each requested sample rate."""

    def __init__(self, noise_dir):
        self.noise_dir = noise_dir
        self._cache = {}

    def get(self, rel_path, sr):
        key = (rel_path, sr)
        if key not in self._cache:
            wave, _ = load_audio(os.path.join(self.noise_dir, rel_path), sr)
            self._cache[key] = wave
        return self._cache[key]


def choose_noise(noises, bank, utt, seed, length, sr):
    """Draw (type, relative file, offset) for one utterance of `length` samples at `sr`."""
    rng = utterance_rng(seed, utt)
    types = list(noises)
    ntype = types[int(rng.integers(len(types)))]
    files = noises[ntype]
    rel = f"{ntype}/{files[int(rng.integers(len(files)))]}"
    offset = draw_offset(bank.get(rel, sr).size, length, rng)
    return ntype, rel, offset


def main(argv=None):
    args = get_parser().parse_args(argv)
    snrs = parse_snrs(args.snrs)
    types = args.types.split() if args.types is not None else None
    if types is not None and not types:
        raise SerError("--types is empty")
    noises = list_noises(args.noise_dir, types)
    wav_scp_path = os.path.join(args.src, "wav.scp")
    if not os.path.isfile(wav_scp_path):
        raise SerError(f"no such file: {wav_scp_path}")
    if os.path.exists(os.path.join(args.src, "segments")):
        raise SerError(f"{args.src}/segments: data dirs with segments are not supported")
    wav_scp = read_kv(wav_scp_path)
    if not wav_scp:
        raise SerError(f"{wav_scp_path} is empty")

    dests = {snr: f"{args.dest_prefix.rstrip('/')}_{snr_tag(snr)}" for snr in snrs}
    for d in dests.values():
        if os.path.abspath(d) == os.path.abspath(args.src):
            raise SerError(f"output '{d}' is the source data dir")
        if os.path.exists(d) and not args.overwrite:
            raise SerError(f"output '{d}' exists (remove it or pass --overwrite)")
    tmps = {snr: d + ".tmp" for snr, d in dests.items()}
    for t in tmps.values():
        shutil.rmtree(t, ignore_errors=True)  # left by an interrupted run
        os.makedirs(os.path.join(t, "wav"))

    try:
        _make(args, snrs, noises, wav_scp, dests, tmps)
    except BaseException:
        for t in tmps.values():  # no partial output left behind
            shutil.rmtree(t, ignore_errors=True)
        raise
    return 0


def _make(args, snrs, noises, wav_scp, dests, tmps):
    bank = NoiseBank(args.noise_dir)
    new_scp = {snr: {} for snr in snrs}
    choice = {snr: {} for snr in snrs}
    for utt, entry in tqdm(wav_scp.items(), desc="make_noisy_data", unit="utt"):
        speech, sr = load_audio(entry)
        ntype, rel, offset = choose_noise(noises, bank, utt, args.seed, speech.size, sr)
        excerpt = loop_excerpt(bank.get(rel, sr), speech.size, offset)
        if not np.any(excerpt):
            raise SerError(f"utterance '{utt}': the excerpt of noise '{rel}' at offset {offset} is silent")
        for snr in snrs:
            try:
                mix = mix_at_snr(speech, excerpt, snr)
            except SerError as e:
                raise SerError(f"utterance '{utt}' ({entry}): {e}") from None
            peak = float(np.max(np.abs(mix)))
            gain = 1.0 if peak <= 1.0 else 1.0 / peak
            wav_name = f"{utt}.wav"
            write_wav(os.path.join(tmps[snr], "wav", wav_name), mix * gain, sr)
            new_scp[snr][utt] = os.path.join(os.path.abspath(dests[snr]), "wav", wav_name)
            choice[snr][utt] = f"{ntype} {rel} {offset} {snr:g} {gain:.6f}"

    for snr in snrs:
        tmp = tmps[snr]
        for name in sorted(os.listdir(args.src)):
            path = os.path.join(args.src, name)
            if os.path.isfile(path) and name not in SKIP_FILES and not name.startswith("."):
                shutil.copyfile(path, os.path.join(tmp, name))
        write_kv(os.path.join(tmp, "wav.scp"), new_scp[snr])
        write_kv(os.path.join(tmp, "noise_choice"), choice[snr])
    for snr in snrs:
        if os.path.exists(dests[snr]):
            shutil.rmtree(dests[snr])
        os.replace(tmps[snr], dests[snr])
        print(f"make_noisy_data: wrote {dests[snr]} ({len(wav_scp)} utterances at {snr:g} dB SNR)")


if __name__ == "__main__":
    run_main(main)
