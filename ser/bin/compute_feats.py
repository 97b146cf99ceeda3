"""Compute features for every utterance of data dirs and write them as Kaldi ark/scp pairs.

    python3 -m ser.bin.compute_feats --config conf/feats/spec.yaml [--write-num-frames] \\
        data/train/split2/1 feats/raw_feats_train.1
    python3 -m ser.bin.compute_feats --config conf/feats/spec.yaml --config conf/feats/mel.yaml \\
        --write-num-frames DATA_DIR PREFIX_SPEC PREFIX_MEL [DATA_DIR PREFIX_SPEC PREFIX_MEL ...]

With K configs the arguments are groups of a data dir and K prefixes, one per config in order
("-": that feature type is not wanted for this data dir). For each data dir, reads DATA_DIR/wav.scp
(paths or "command |"), reads each recording once, resamples it once per sample rate the configs
need (see ser.features.extract_all), extracts every wanted feature type and writes PREFIX.ark,
PREFIX.scp and, with --write-num-frames, PREFIX.utt2num_frames ("utt frames" lines) per prefix.
The matrices equal those of one run per config. The scp refers to PREFIX.ark by the path given.

Outputs are atomic: the old outputs of every prefix are removed first, everything is written under
temporary names and renamed at the end, each scp last, so a killed job never leaves a
complete-looking scp. An unreadable, empty or too short recording stops the job with a one-line
error naming the wav.scp line, exit status 1 and no output files of any prefix.
"""
import ctypes
import os

# As a program, a feature job is one core's work (make_feats.sh runs nj of them side by side).
# numpy's BLAS, which does the resampling, reads its thread count once, when numpy is first
# imported: set it before. (Imported as a module, it leaves the caller's environment alone.)
if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import sys  # noqa: E402

import kaldiio  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ser.audio import read_wav_entry  # noqa: E402
from ser.data.atomic import atomic_open  # noqa: E402
from ser.data.kvfile import read_kv  # noqa: E402
from ser.errors import SerError, run_main  # noqa: E402
from ser.features import build_extractor, extract_all, read_feats_config  # noqa: E402

PROG = "compute_feats.py"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Extract features for DATA_DIR/wav.scp into PREFIX.ark and PREFIX.scp: "
                    "with K --config options, arguments are groups DATA_DIR PREFIX_1 .. PREFIX_K "
                    "(PREFIX '-': not this type for this data dir).")
    p.add_argument("--config", required=True, action="append",
                   help="feature config YAML (e.g. conf/feats/spec.yaml); repeat for more types")
    p.add_argument("--write-num-frames", action="store_true",
                   help="also write PREFIX.utt2num_frames")
    p.add_argument("args", nargs="+", metavar="DATA_DIR PREFIX",
                   help="a data dir with wav.scp, then one output prefix per --config; repeatable")
    return p.parse_args(argv)


def group_args(args, num_configs):
    """[DATA_DIR, PREFIX_1..PREFIX_K, DATA_DIR, ...] -> [(data_dir, [prefix or None] * K)]."""
    size = num_configs + 1
    if len(args) % size:
        raise SerError(f"with {num_configs} --config option(s) the arguments are groups of a data "
                       f"dir and {num_configs} prefix(es), got {len(args)} argument(s)")
    groups = []
    for i in range(0, len(args), size):
        prefixes = [None if a == "-" else a for a in args[i + 1:i + size]]
        if all(p is None for p in prefixes):
            raise SerError(f"data dir '{args[i]}': every prefix is '-' (nothing to compute)")
        groups.append((args[i], prefixes))
    seen = set()
    for _, prefixes in groups:
        for p in prefixes:
            if p is not None and p in seen:
                raise SerError(f"output prefix '{p}' is given twice")
            seen.add(p)
    return groups


def _remove(*paths):
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class _Output:
    """One ark/scp(/utt2num_frames) to write for one extractor."""

    def __init__(self, extractor, ark_path, scp_path, num_frames_path=None):
        self.extractor = extractor
        self.ark, self.scp, self.num_frames_path = ark_path, scp_path, num_frames_path
        self.tmp_ark, self.tmp_scp = ark_path + ".tmp", scp_path + ".tmp"
        self.num_frames = {}

    def final_paths(self):
        return [self.scp, self.ark] + ([self.num_frames_path] if self.num_frames_path else [])

    def finish(self):
        """Rename the temporary ark into place; write utt2num_frames, then the scp (last)."""
        with open(self.tmp_scp, encoding="utf-8") as f:
            lines = f.read().splitlines()
        fixed = []
        for line in lines:  # the scp names the temporary ark; point it at the final name
            utt, loc = line.split(" ", 1)
            path, offset = loc.rsplit(":", 1)
            if path != self.tmp_ark:
                raise SerError(f"{self.tmp_scp}: unexpected ark path in '{line}'")
            fixed.append(f"{utt} {self.ark}:{offset}\n")
        os.replace(self.tmp_ark, self.ark)
        if self.num_frames_path:
            with atomic_open(self.num_frames_path, "w", encoding="utf-8") as f:
                f.writelines(f"{u} {n}\n" for u, n in self.num_frames.items())
        with atomic_open(self.scp, "w", encoding="utf-8") as f:
            f.writelines(fixed)


def _extract(outputs, wav_scp):
    """Fill every output's ark/scp from wav_scp, reading each recording once."""
    wavs = read_kv(wav_scp)
    if not wavs:
        raise SerError(f"{wav_scp}: no utterances")
    extractors = [o.extractor for o in outputs]
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(kaldiio.WriteHelper(f"ark,scp:{o.tmp_ark},{o.tmp_scp}"))
                   for o in outputs]
        for lineno, (utt, entry) in enumerate(tqdm(wavs.items(), desc="compute_feats", unit="utt",
                                                   mininterval=2.0), 1):
            try:
                wave, sr = read_wav_entry(entry)
                feats = extract_all(extractors, wave, sr)
            except SerError as e:
                msg = " ".join(str(e).split())  # one line, whatever soundfile says
                raise SerError(f"{wav_scp}:{lineno}: utterance '{utt}': {msg}") from None
            for output, writer, mat in zip(outputs, writers, feats):
                writer[utt] = mat
                output.num_frames[utt] = mat.shape[0]


def compute_feats_multi(outputs, wav_scp):
    """Extract every _Output's features for the wav.scp entries (see the module docstring)."""
    # A stale scp (or a stale ark an old scp points into) must not survive a failed run.
    finals = [p for o in outputs for p in o.final_paths()]
    _remove(*finals)
    try:
        _extract(outputs, wav_scp)
        for output in outputs:
            output.finish()
    except BaseException:
        _remove(*[p for o in outputs for p in (o.tmp_ark,)], *finals)
        raise
    finally:
        _remove(*[o.tmp_scp for o in outputs])
    return [o.num_frames for o in outputs]


def compute_feats(extractor, wav_scp, ark_path, scp_path, num_frames_path=None):
    """Extract one extractor's features for every wav.scp entry into ark/scp."""
    return compute_feats_multi([_Output(extractor, ark_path, scp_path, num_frames_path)], wav_scp)[0]


def keep_freed_memory():
    """Each recording's arrays (a few MB) are allocated and freed again; by default glibc gives
    such memory back to the kernel at once and the next recording faults it in again page by page,
    which measured as half of a job's CPU time. Keep up to 64 MB of it (glibc's mallopt: trim
    threshold, and a fixed mmap threshold; another C library: nothing happens)."""
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(m_mmap_threshold, 16 << 20)
        libc.mallopt(m_trim_threshold, 64 << 20)
    except (OSError, AttributeError):
        pass


def main(argv=None):
    args = parse_args(argv)
    groups = group_args(args.args, len(args.config))
    for data_dir, _ in groups:
        if not os.path.isfile(os.path.join(data_dir, "wav.scp")):
            raise SerError(f"no wav.scp in data dir '{data_dir}'")
        if os.path.exists(os.path.join(data_dir, "segments")):
            raise SerError(f"{data_dir}/segments: segment files are not supported")
    configs = [read_feats_config(c) for c in args.config]
    extractors = [build_extractor(c, source=path)
                  for c, path in zip(configs, args.config)]
    plans = []
    for data_dir, prefixes in groups:
        outputs = []
        for extractor, prefix in zip(extractors, prefixes):
            if prefix is None:
                continue
            prefix_dir = os.path.dirname(prefix)
            if prefix_dir:
                os.makedirs(prefix_dir, exist_ok=True)
            outputs.append(_Output(extractor, prefix + ".ark", prefix + ".scp",
                                   prefix + ".utt2num_frames" if args.write_num_frames else None))
        plans.append((data_dir, outputs))
    done = []
    try:
        for data_dir, outputs in plans:
            compute_feats_multi(outputs, os.path.join(data_dir, "wav.scp"))
            done.extend(outputs)
    except BaseException:
        # A failed job leaves nothing: not even the complete outputs of its earlier data dirs.
        _remove(*[p for o in done for p in o.final_paths()])
        raise
    for output in done:
        frames = output.num_frames
        print(f"{PROG}: wrote {len(frames)} utterances ({output.extractor.TYPE}, "
              f"dim {output.extractor.dim}, {sum(frames.values())} frames) to {output.scp}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    keep_freed_memory()
    run_main(main)
