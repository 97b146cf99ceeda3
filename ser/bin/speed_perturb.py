"""Speed-perturb one recording and write it as a 16-bit WAV to standard output.

Used lazily from a wav.scp written by utils/perturb_data_dir_speed.sh, as a Kaldi pipe entry:

    sp0.9-03-03a01Fa python3 -m ser.bin.speed_perturb --factor 0.9 /data/03a01Fa.wav |
    sp0.9-x          some-command ... | python3 -m ser.bin.speed_perturb --factor 0.9 - |

SRC is a wav.scp value without the trailing '|' handled here: a file path, or '-' to read a WAV
from standard input (so a source entry that is itself a pipe is chained). The output keeps the
source sample rate; samples beyond [-1, 1] after resampling are clipped when writing PCM16.
"""
import argparse
import io
import sys

import numpy as np
import soundfile as sf

from ser.augment.speed import speed_perturb
from ser.errors import SerError, run_main


def get_parser():
    p = argparse.ArgumentParser(
        prog="python -m ser.bin.speed_perturb",
        description="Apply sox-style speed perturbation to a WAV and write the result (WAV) to stdout.")
    p.add_argument("--factor", type=float, required=True, help="speed factor, e.g. 0.9 or 1.1")
    p.add_argument("src", help="input WAV path, or '-' for a WAV on standard input")
    return p


def _read(src):
    try:
        if src == "-":
            data, sr = sf.read(io.BytesIO(sys.stdin.buffer.read()), dtype="float32", always_2d=True)
        else:
            data, sr = sf.read(src, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for unreadable input
        raise SerError(f"cannot read audio '{src}': {e}") from None
    if data.shape[0] == 0:
        raise SerError(f"audio '{src}' has no samples")
    return data.mean(axis=1), int(sr)


def main(argv=None):
    args = get_parser().parse_args(argv)
    wave, sr = _read(args.src)
    out = speed_perturb(wave, sr, args.factor)
    buf = io.BytesIO()
    sf.write(buf, np.clip(out, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    run_main(main)
