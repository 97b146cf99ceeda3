"""'## Environment': the python and torch that wrote the report, and per training run (its
train.log, config.yaml and job log) the device, torch threads, precision and the config used,
with what has changed in that config file since the run."""
import argparse
import contextlib
import glob
import io
import os
import platform
import re
import shlex

from ser.errors import SerError
from ser.eval.aggregate import recipe_layout, run_config
from ser.eval.config_diff import config_differences
from ser.eval.report.markdown import checkout_root, inside, rel


def _head(path, size=4096):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(size)
    except OSError:
        return ""


def job_log(seed, fold):
    """The name of a run's training job log in <exp>/<tag>/log/ (run.sh's job array SEED.FOLD)."""
    return f"train.seed{seed}.{fold}.log"


def _job_log(run):
    """The start of the job log of a run's training (its command line is the first line), or ''."""
    return _head(os.path.join(run.exp, run.tag, "log", job_log(run.seed, run.fold)))


def _cpu_name():
    for line in _head("/proc/cpuinfo", 1 << 16).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def config_changes(job_line, run_cfg):
    """For a run with this job-log command line (JOB_LINE, the first line of its job log) and
    resolved config RUN_CFG: a function PATH -> how the training config file PATH, resolved with
    the run's command line as ser.bin.train resolves it, differs from RUN_CFG ({key: (the run's
    value, the value now)}, {} when the same), or None when that cannot be told (no command line
    or config, or one the trainer refuses today). Keys added to the trainer after the run are
    filled in by their defaults, which keep the earlier behaviour. The command line and the run's
    config are read once; each PATH costs one resolve."""
    from ser.bin import train
    from ser.training import config as C
    m = re.match(r"#.*?ser\.bin\.train\b.*? -- (.*)$", job_line.splitlines()[0] if job_line else "")
    if not m or not run_cfg:
        return lambda path: None
    try:
        with contextlib.redirect_stderr(io.StringIO()):   # argparse reports to stderr, then exits
            # per-job parts the job's shell filled in ($(echo SEED.FOLD | cut ...)): their
            # values (seed, fold, outdir) are not settings, so any number stands in for them
            argv = ["0" if "$" in a else a for a in shlex.split(m.group(1))]
            args = train.get_parser().parse_args(argv)
        command_line_only = {k: v for k, v in run_cfg.items() if k in C.RESERVED or k == "sync_batchnorm"}
        from_file = {k: v for k, v in run_cfg.items() if k not in command_line_only}
        then = {**C.without_options_off(C.merge(C.DEFAULTS, from_file, "config.yaml")), **command_line_only}
    except (SerError, SystemExit, ValueError, TypeError, KeyError, AttributeError):
        return lambda path: None   # a malformed run config or command line: no claim about any file

    def changes(path):
        if not os.path.isfile(path):
            return None
        try:
            now = train.resolve_config(argparse.Namespace(**{**vars(args), "config": path}))
            return {k: tuple(v) for k, v in config_differences([then, now]).items()}
        except (SerError, ValueError, TypeError, KeyError, AttributeError, OSError):
            return None   # a file the trainer refuses today: no claim about it
    return changes


def _changes_text(changes):
    return ", ".join(f"{k} {a} → {b}" for k, (a, b) in changes.items())


def config_ref(path, out_dir, changes=None):
    """Markdown for the config file a run named, seen from the report's dir `out_dir` (the
    recipe, <root>/egs/<recipe>, or a dir below it): a link when it is there; a file of another
    checkout (a worktree that ran the experiment) as the same path in this one; a file gone from
    the recipe as the name the recipe's config lookup now falls back to (egs/TEMPLATE/...). Never
    a link out of the tree.

    CHANGES (the run's config_changes: path -> {key: (then, now)} or None) tells the
    reader where the linked file no longer holds the run's settings, and, for a file gone from
    this checkout, which shipped config of the same name holds them now."""
    out_dir = os.path.abspath(out_dir)
    root = checkout_root(out_dir)
    m = re.search(r"(?:^|/)(egs/[^/]+)/(.+)$", os.path.abspath(path))
    here = os.path.join(root, m.group(1), m.group(2)) if m else os.path.abspath(path)
    link = lambda f: f"[{rel(f, out_dir)}]({rel(f, out_dir)})"

    def changed_since(f):
        diff = changes(f) if changes else None
        return f"changed since the run: {_changes_text(diff)}" if diff else ""

    if os.path.exists(here) and inside(here, root):
        note = changed_since(here)
        return link(here) + (f" ({note})" if note else "")
    fallback = os.path.join(root, "egs", "TEMPLATE", m.group(2)) if m else None
    if fallback and os.path.exists(fallback):
        note = changed_since(fallback)
        return (f"`{rel(here, out_dir)}` (not in this checkout; the recipe now reads "
                f"{link(fallback)}{', ' + note if note else ''})")
    if changes:
        name = os.path.basename(path)
        for f in sorted(glob.glob(os.path.join(root, "egs", "*", "conf", "**", name), recursive=True)):
            if changes(f) == {}:
                return f"`{path}` (not in this checkout; the same settings: {link(f)})"
    return f"`{path}` (not in this checkout)"


def job_config_path(exp_dir, path, out_dir):
    """The config file a job of `exp_dir` named with --config: an absolute path as is; a relative
    one from the recipe that holds `exp_dir` (without an `exp` component in its path, exp_dir is
    taken as <recipe>/<dir>/<data set>). A score archive (results/NAME/scores/<corpus>/exp/...,
    ser.eval.score_archive) holds no conf/: its relative paths name files of the recipe
    egs/<corpus> of the checkout the report `out_dir` belongs to."""
    if os.path.isabs(path):
        return path
    recipe, corpus, _ = recipe_layout(exp_dir)
    there = os.path.join(recipe or os.path.dirname(os.path.dirname(os.path.abspath(exp_dir))), path)
    if os.path.exists(there) or not corpus:
        return there
    ours = os.path.join(checkout_root(out_dir), "egs", corpus, path)
    return ours if os.path.exists(ours) else there


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
        if m and r.tag not in configs:
            configs[r.tag] = (job_config_path(r.exp, m.group(1), layout.out_dir), config_changes(job, cfg))
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
        L.append("- Configs: " + "; ".join(f"`{t}`: {config_ref(path, out_dir, changes)}"
                                           for t, (path, changes) in sorted(configs.items())) + ".")
    return L + [""]
