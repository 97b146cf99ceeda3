#!/usr/bin/env python3
"""Helpers of bench/gpu_check.sh (one small command each, so the shell script stays readable).

  gpu_check_tools.py carry MEL_DIR FOLD_DIR CLASSES DEST
                                                  build the carried data dir (--data of gpu_check.sh)
                                                  from a recipe's mel data dir and one of its folds
  gpu_check_tools.py env                          python, torch, CUDA, GPU, threads
  gpu_check_tools.py materialise SRC DEST         copy a carried data dir, pointing feats.scp at SRC
  gpu_check_tools.py pack-feats FEATS_DIR DEST    FEATS_DIR's features, losslessly packed into DEST
                                                  (~78 % of the arks' size, for the transfer limit)
  gpu_check_tools.py unpack-feats SRC FEATS_DIR ARK
                                                  write them back: ARK and FEATS_DIR/feats.scp
  gpu_check_tools.py compare-checkpoints A B      bit-identical? (training state of two runs)
  gpu_check_tools.py history FILE COLUMN...       last value and finiteness of history columns
  gpu_check_tools.py nccl DEVICE                  under torchrun: all_reduce through the process group
"""
import math
import os
import shutil
import sys

import torch

from ser.errors import SerError


def env():
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {torch.version.cuda}, available {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f"gpu {p.name}, {p.total_memory / 2 ** 30:.0f} GiB, capability {p.major}.{p.minor}, "
              f"bf16 {torch.cuda.is_bf16_supported()}")


def carry(mel_dir, fold_dir, classes, dest):
    """Write DEST/mel (MEL_DIR's tables restricted to the fold's utterances, feats.scp pointing at
    @DATA@/feats/mel.ark), DEST/feats/mel.ark (their features), DEST/fold1 (the fold's lists) and
    DEST/classes.txt: a self-contained data dir small enough to travel to another machine."""
    import kaldiio
    from ser.data.atomic import building_dir
    from ser.data.datadir import DataDir, write_filtered
    from ser.data.feats_io import ScpReader
    from ser.data.fold_dir import LISTS, list_path, read_utt_list
    utts = {u for name in LISTS for u in read_utt_list(list_path(fold_dir, name))}
    src = DataDir(mel_dir)
    missing = sorted(utts - set(src.utt2spk()))
    if missing:
        raise SerError(f"{missing[0]} (of {fold_dir}) is not in {src.file('utt2spk')}")
    feats = ScpReader(src.file("feats.scp"))   # a bad ark is a one-line error naming scp line and ark
    dest = os.path.abspath(dest)
    with building_dir(dest) as tmp:   # a failed carry leaves no half-written DEST
        os.makedirs(os.path.join(tmp, "feats"))
        write_filtered(src, DataDir(os.path.join(tmp, "mel")), sorted(utts), tables=src.read_tables())
        ark, scp = os.path.join(tmp, "feats", "mel.ark"), os.path.join(tmp, "mel", "feats.scp")
        with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
            for utt in sorted(utts):
                writer(utt, feats[utt])
        with open(scp, encoding="utf-8") as f:
            text = f.read().replace(tmp, "@DATA@")
        with open(scp, "w", encoding="utf-8") as f:
            f.write(text)
        shutil.copytree(fold_dir, os.path.join(tmp, "fold1"))
        shutil.copy(classes, os.path.join(tmp, "classes.txt"))
        size = os.path.getsize(ark)
    print(f"carry: {len(utts)} utterances of {mel_dir} ({size / 2 ** 20:.1f} MiB) -> {dest}")


def materialise(src, dest):
    """Copy the data dir `src`/mel, `src`/fold1 and `src`/classes.txt to `dest`; feats.scp's
    @DATA@ placeholder becomes the absolute path of `src` (the carried arks stay where they are)."""
    src = os.path.abspath(src)
    os.makedirs(dest, exist_ok=True)
    for name in ("mel", "fold1"):
        target = os.path.join(dest, name)
        if os.path.exists(target):
            shutil.rmtree(target)
        shutil.copytree(os.path.join(src, name), target)
    shutil.copy(os.path.join(src, "classes.txt"), dest)
    scp = os.path.join(dest, "mel", "feats.scp")
    with open(scp) as f:
        text = f.read().replace("@DATA@", src)
    with open(scp, "w") as f:
        f.write(text)


_PACKED_VALUES, _PACKED_INDEX = "values.zlib", "index.tsv"


def pack_feats(feats_dir, dest):
    """Write DEST/index.tsv (utterance, rows, columns, in feats.scp's order, and the values' sha256)
    and DEST/values.zlib: the float32 values with their bytes grouped by position (all first bytes,
    then all second bytes, ...), which deflate compresses better than the interleaved floats."""
    import hashlib
    import zlib

    import numpy as np

    from ser.data.feats_io import ScpReader
    reader = ScpReader(os.path.join(feats_dir, "feats.scp"))
    utts = list(reader)
    mats = [np.ascontiguousarray(reader[u], dtype=np.float32) for u in utts]
    flat = np.concatenate([m.ravel() for m in mats])
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, _PACKED_VALUES), "wb") as f:
        f.write(zlib.compress(flat.view(np.uint8).reshape(-1, 4).T.tobytes(), 6))
    with open(os.path.join(dest, _PACKED_INDEX), "w", encoding="utf-8") as f:
        f.write(f"# sha256 {hashlib.sha256(flat.tobytes()).hexdigest()}\n")
        f.writelines(f"{u} {m.shape[0]} {m.shape[1]}\n" for u, m in zip(utts, mats))
    size = os.path.getsize(os.path.join(dest, _PACKED_VALUES))
    print(f"pack-feats: {len(utts)} matrices ({flat.nbytes / 2 ** 20:.1f} MiB) -> {dest} ({size / 2 ** 20:.1f} MiB)")


def unpack_feats(src, feats_dir, ark):
    """Inverse of pack_feats: ARK (Kaldi float32 matrices) and FEATS_DIR/feats.scp pointing at it;
    refuses values whose sha256 differs from the packed one."""
    import hashlib
    import zlib

    import kaldiio
    import numpy as np
    with open(os.path.join(src, _PACKED_INDEX), encoding="utf-8") as f:
        digest = f.readline().split()[2]
        index = [(u, int(r), int(c)) for u, r, c in (line.split() for line in f)]
    with open(os.path.join(src, _PACKED_VALUES), "rb") as f:
        try:
            shuffled = np.frombuffer(zlib.decompress(f.read()), dtype=np.uint8)
        except zlib.error as e:
            raise SerError(f"{src}/{_PACKED_VALUES}: not a packed feature file ({e})") from None
    expected = 4 * sum(r * c for _, r, c in index)
    if shuffled.size != expected:
        raise SerError(f"{src}/{_PACKED_VALUES}: {shuffled.size} bytes, {_PACKED_INDEX} lists {expected}")
    flat = shuffled.reshape(4, -1).T.copy().view(np.float32).ravel()
    if hashlib.sha256(flat.tobytes()).hexdigest() != digest:
        raise SerError(f"{src}: unpacked values do not match the packed sha256")
    scp = os.path.join(feats_dir, "feats.scp")
    os.makedirs(os.path.dirname(os.path.abspath(ark)), exist_ok=True)
    offset = 0
    with kaldiio.WriteHelper(f"ark,scp:{os.path.abspath(ark)},{scp}.tmp") as writer:
        for utt, rows, cols in index:
            writer(utt, flat[offset:offset + rows * cols].reshape(rows, cols))
            offset += rows * cols
    os.replace(scp + ".tmp", scp)
    print(f"unpack-feats: {len(index)} matrices -> {ark}, {scp}")


def _tensors(obj, prefix=""):
    """Flatten the tensors of a nested checkpoint dict (rng states and timings left out)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("rng", "rng_ranks", "history", "time", "window"):
                continue
            out.update(_tensors(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}{i}."))
    elif torch.is_tensor(obj):
        out[prefix.rstrip(".")] = obj
    return out


def compare_checkpoints(a, b):
    """Print whether two checkpoints hold identical tensors; exit 1 if not."""
    ta = _tensors(torch.load(a, map_location="cpu", weights_only=False))
    tb = _tensors(torch.load(b, map_location="cpu", weights_only=False))
    if set(ta) != set(tb):
        print(f"DIFFERENT keys: {sorted(set(ta) ^ set(tb))[:5]}")
        return 1
    worst, name = 0.0, None
    for k in ta:
        if not torch.equal(ta[k], tb[k]):
            d = (ta[k].double() - tb[k].double()).abs().max().item() if ta[k].is_floating_point() else math.inf
            if d > worst:
                worst, name = d, k
    if name is None:
        print(f"bit-identical ({len(ta)} tensors)")
        return 0
    print(f"DIFFERENT: largest difference {worst:.3g} in {name}")
    return 1


def history(path, *columns):
    """Print rows, last values and whether every value of `columns` is finite; exit 1 if not."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    head, rows = rows[0], rows[1:]
    ok = True
    parts = [f"{len(rows)} rows"]
    for c in columns:
        values = [float(r[head.index(c)]) for r in rows if r[head.index(c)] != "nan"]
        finite = all(math.isfinite(v) for v in values)
        ok &= finite and bool(values)
        parts.append(f"{c}: first {values[0]:.4g} last {values[-1]:.4g} best {max(values) if 'uar' in c else min(values):.4g}"
                     f"{'' if finite else ' NOT FINITE'}" if values else f"{c}: none")
    print(", ".join(parts))
    return 0 if ok else 1


def nccl(device):
    """all_reduce of each rank's (rank + 1) through the process group torchrun set up."""
    import torch.distributed as dist
    backend = "nccl" if device == "cuda" else "gloo"
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if device == "cuda" else torch.device("cpu")
    dist.init_process_group(backend=backend)
    x = torch.full((4,), float(dist.get_rank() + 1), device=dev)
    dist.all_reduce(x)
    world = dist.get_world_size()
    expected = world * (world + 1) / 2
    print(f"{backend} all_reduce over {world} process(es): {x[0].item()} (expected {expected})")
    dist.destroy_process_group()
    return 0 if x[0].item() == expected else 1


def main(argv):
    commands = {"carry": carry, "env": env, "materialise": materialise, "compare-checkpoints": compare_checkpoints,
                "history": history, "nccl": nccl, "pack-feats": pack_feats, "unpack-feats": unpack_feats}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](*argv[1:]) or 0
    except SerError as e:
        print(f"{argv[0]}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
