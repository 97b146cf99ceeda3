"""Training curves: history.png next to history.tsv, redrawn as the history grows.

Classifier runs (ser.training.trainer): training and validation loss, validation UAR (and WA)
and the learning rate per epoch. Diffusion runs (ser.diffusion.trainer): the loss (and its mse
and vb terms) and the learning rate per logged step. matplotlib's Agg canvas (no display, no
pyplot state); written atomically, so a killed run leaves the previous picture, not half of one.
The trainers draw through CurvesWriter, which redraws at most every REDRAW_SECONDS and always at
the end: a drawing costs 0.2-0.5 s of CPU, a tenth of a small model's epoch on a CPU.

TensorBoard: with `tensorboard: true` in the training or diffusion config and the `tensorboard`
package installed (`pip install ser-recipes[tensorboard]`), the same scalars also go to
<outdir>/tensorboard/.
"""
import math
import os
import time

from ser.data.atomic import atomic_save_png

CURVES_FILE = "history.png"
REDRAW_SECONDS = 30.0
TRAINING_SCALARS = ("train_loss", "valid_loss", "valid_uar", "valid_wa", "lr")
DIFFUSION_SCALARS = ("loss", "mse", "vb", "lr")
_writers = {}   # outdir -> (SummaryWriter, last step written): one event file per run


def _values(history, key):
    return [math.nan if r.get(key) is None else float(r[key]) for r in history]


def _figure(rows):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 2.0 * rows + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]


def _plot(ax, x, y, label, **kw):
    # a point marker so that a single epoch (or validations every N epochs) still shows
    ax.plot(x, y, marker="o", markersize=2.5, linewidth=1.2, label=label, **kw)


def _finish(ax, ylabel, legend=True):
    ax.set_ylabel(ylabel)
    ax.grid(linewidth=0.4, alpha=0.5)
    if legend:
        ax.legend(fontsize=7)


def _draw_training(outdir, history):
    """history.png of a classifier run from the trainer's history rows (see trainer.HISTORY_COLUMNS)."""
    x = [r["epoch"] for r in history]
    fig, (loss, score, lr) = _figure(3)
    _plot(loss, x, _values(history, "train_loss"), "training loss")
    _plot(loss, x, _values(history, "valid_loss"), "validation loss")
    _finish(loss, "loss")
    _plot(score, x, [100 * v for v in _values(history, "valid_uar")], "validation UAR")
    _plot(score, x, [100 * v for v in _values(history, "valid_wa")], "validation WA", linestyle="--")
    _finish(score, "%")
    rates = _values(history, "lr")
    _plot(lr, x, rates, "learning rate", color="C2")
    if all(v > 0 for v in rates):   # halvings read as equal steps; a zero rate cannot be logged
        lr.set_yscale("log")
    _finish(lr, "learning rate", legend=False)
    lr.set_xlabel("epoch")
    loss.set_title(f"{os.path.basename(os.path.normpath(outdir))}: training curves", fontsize=9)
    atomic_save_png(os.path.join(outdir, CURVES_FILE), fig)


def _draw_diffusion(outdir, history):
    """history.png of a diffusion run from its history rows (step, lr, loss, mse, vb, ...)."""
    x = [r["step"] for r in history]
    fig, (loss, lr) = _figure(2)
    drawn = []
    for key in ("loss", "mse", "vb"):
        if any(key in r for r in history):
            drawn += _values(history, key)
            _plot(loss, x, drawn[-len(history):], key)
    log_scale = all(v > 0 for v in drawn if not math.isnan(v))   # losses span decades
    if log_scale:
        loss.set_yscale("log")
    _finish(loss, "loss (log scale)" if log_scale else "loss")
    _plot(lr, x, _values(history, "lr"), "learning rate", color="C2")
    _finish(lr, "learning rate", legend=False)
    lr.set_xlabel("step")
    loss.set_title(f"{os.path.basename(os.path.normpath(outdir))}: diffusion training", fontsize=9)
    atomic_save_png(os.path.join(outdir, CURVES_FILE), fig)


class CurvesWriter:
    """A run's curves: `update(history, final)` redraws history.png when it was last drawn
    `min_interval` seconds ago or more (or never, in this process) and whenever `final` is true;
    TensorBoard scalars (with `tensorboard`) are written on every update."""

    KINDS = {"training": (_draw_training, "epoch", TRAINING_SCALARS),
             "diffusion": (_draw_diffusion, "step", DIFFUSION_SCALARS)}

    def __init__(self, outdir, kind, tensorboard=False, min_interval=REDRAW_SECONDS, clock=time.monotonic):
        self.outdir, self.tensorboard, self.min_interval, self.clock = outdir, tensorboard, min_interval, clock
        self.draw, self.step_key, self.scalars = self.KINDS[kind]
        self.drawn_at = None

    def update(self, history, final=False):
        if not history:
            return
        now = self.clock()
        if final or self.drawn_at is None or now - self.drawn_at >= self.min_interval:
            self.draw(self.outdir, history)
            self.drawn_at = now
        if self.tensorboard:
            _tensorboard(self.outdir, history, self.step_key, self.scalars)


def _tensorboard(outdir, history, step_key, keys):
    """Append the rows not yet written to <outdir>/tensorboard (when the package is installed)."""
    if outdir not in _writers:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional extra is not installed: the PNG is enough
            return
        _writers[outdir] = [SummaryWriter(os.path.join(outdir, "tensorboard")), -math.inf]
    entry = _writers[outdir]
    writer, last = entry
    for r in history:
        if r[step_key] <= last:
            continue   # written by an earlier call of this process
        for k in keys:
            v = r.get(k)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                writer.add_scalar(k, float(v), r[step_key])
        entry[1] = r[step_key]
    writer.flush()
