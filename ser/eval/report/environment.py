"""'## Environment': the python and torch that wrote the report, and per training run (its
train.log, config.yaml and job log) the device, torch threads, precision and the config used."""
import os
import platform
import re

from ser.eval.aggregate import run_config
from ser.eval.report.markdown import checkout_root, inside, rel


def _head(path, size=4096):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(size)
    except OSError:
        return ""


def _job_log(run):
    """The start of the job log of a run's training (`<exp>/<tag>/log/train.seed<S>.<K>.log`:
    the command line is its first line), or ''."""
    return _head(os.path.join(run.exp, run.tag, "log", f"train.seed{run.seed}.{run.fold}.log"))


def _cpu_name():
    for line in _head("/proc/cpuinfo", 1 << 16).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def config_ref(path, out_dir):
    """Markdown for the config file a run named, seen from the report's dir `out_dir` (the
    recipe, <root>/egs/<recipe>, or a dir below it): a link when it is there; a file of another
    checkout (a worktree that ran the experiment) as the same path in this one; a file gone from
    the recipe as the name the recipe's config lookup now falls back to (egs/TEMPLATE/...). Never
    a link out of the tree."""
    out_dir = os.path.abspath(out_dir)
    root = checkout_root(out_dir)
    m = re.search(r"(?:^|/)(egs/[^/]+)/(.+)$", os.path.abspath(path))
    here = os.path.join(root, m.group(1), m.group(2)) if m else os.path.abspath(path)
    if os.path.exists(here) and inside(here, root):
        return f"[{rel(here, out_dir)}]({rel(here, out_dir)})"
    fallback = os.path.join(root, "egs", "TEMPLATE", m.group(2)) if m else None
    if fallback and os.path.exists(fallback):
        return (f"`{rel(here, out_dir)}` (not in this checkout; the recipe now reads "
                f"[{rel(fallback, out_dir)}]({rel(fallback, out_dir)}))")
    return f"`{path}` (not in this checkout)"


def environment_section(layout):
    from importlib import metadata

    # Trainings, once each: a selection links its chosen runs' files (same train.log), an
    # ensemble (ser.eval.seed_ensemble: no train.log of its own) trained nothing.
    runs = {}
    for r in (r for s in layout.summaries for r in s.runs):
        log = os.path.join(r.run_dir, "train.log")
        if os.path.exists(log):
            runs.setdefault(os.path.realpath(log), r)
        elif not os.path.exists(os.path.join(r.exp, r.tag, "tag.yaml")):
            runs.setdefault(r.run_dir, r)
    runs = list(runs.values())
    devices, threads, precisions, configs = {}, {}, {}, {}
    for r in runs:
        m = re.search(r"device ([^\s,]+)", _head(os.path.join(r.run_dir, "train.log")))
        dev = m.group(1) if m else "?"
        devices[dev] = devices.get(dev, 0) + 1
        cfg = run_config(r.run_dir) or {}
        prec = str(cfg.get("precision", "fp32"))
        precisions[prec] = precisions.get(prec, 0) + 1
        job = _job_log(r)
        m = re.search(r"--num-threads (\d+)", job)
        th = m.group(1) if m else "?"
        threads[th] = threads.get(th, 0) + 1
        m = re.search(r"--config (\S+)", job)
        if m:
            recipe = os.path.dirname(os.path.dirname(os.path.abspath(r.exp)))  # exp/<dset> -> recipe
            configs.setdefault(r.tag, os.path.join(recipe, m.group(1)))
    try:
        torch_version = metadata.version("torch")   # no torch import: the report stays fast
    except metadata.PackageNotFoundError:
        torch_version = "?"

    def counted(d):
        return ", ".join(f"{k} ({n} runs)" if len(d) > 1 else k for k, n in sorted(d.items()))
    L = ["## Environment", "",
         f"- Software: python {platform.python_version()}, torch {torch_version} (the venv that "
         f"generated this report); {platform.system()} on {_cpu_name()}, {os.cpu_count()} CPUs.",
         f"- Training runs ({len(runs)}): device {counted(devices)}; torch threads per job "
         f"{counted(threads)}; precision {counted(precisions)}."]
    if configs:
        out_dir = layout.out_dir
        L.append("- Configs: " + "; ".join(f"`{t}`: {config_ref(p, out_dir)}"
                                           for t, p in sorted(configs.items())) + ".")
    return L + [""]
