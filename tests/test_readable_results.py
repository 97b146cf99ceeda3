"""Figures a reader can trust: the chance line of the UAR bar charts, per-run confusion titles,
and the training-curve PNGs (classifier and diffusion histories)."""
import numpy as np

from ser.eval.bar_chart import bar_chart_figure
from ser.eval.confusion_plot import run_label, save_confusion_png
from ser.training.curves import CurvesWriter


def test_bar_chart_draws_chance_inside_the_axis():
    # bars far above chance: without the line the axis would start near 60
    fig = bar_chart_figure(["cnn", "densenet"], ["none", "mixup"], [[70, 72], [71, 74]], [[1, 1], [1, 1]],
                           chance=25.0)
    ax = fig.axes[0]
    lines = [l for l in ax.lines if list(l.get_ydata()) == [25.0, 25.0]]
    assert len(lines) == 1 and lines[0].get_linestyle() == "--"
    assert ax.get_ylim()[0] <= 20.0
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "chance (25.0 %)" in labels and "none" in labels
    # without chance the paper's truncated axis is kept
    assert bar_chart_figure(["cnn"], ["none"], [[70]], [[1]]).axes[0].get_ylim()[0] >= 50


def test_per_run_confusion_title_names_fold_and_condition(tmp_path):
    run = tmp_path / "exp" / "all" / "spec_cnn_none_ab12cd34" / "fold.3" / "seed2" / "test_snr10"
    path = run / "confusion.png"
    assert run_label(path) == "spec_cnn_none_ab12cd34 fold 3 seed 2, snr10"
    assert run_label(tmp_path / "figures" / "emodb_x_confusion.png") is None
    save_confusion_png(path, np.eye(2), ["a", "b"], "UAR 100.0%")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_training_curves_png(tmp_path):
    history = [{"epoch": e, "lr": 1e-3 / e, "train_loss": 1.0 / e, "valid_loss": float("nan") if e == 2 else 1.2 / e,
                "valid_uar": 0.3 + 0.1 * e, "valid_wa": 0.35 + 0.1 * e, "time": 1.0} for e in (1, 2, 3)]
    CurvesWriter(str(tmp_path), "training").update(history)
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    rows = [{"step": s, "lr": 1e-4, "loss": 1.0 / s, "mse": 0.9 / s, "vb": 0.1 / s, "steps_per_s": 2.0}
            for s in (2, 4)]
    (tmp_path / "diff").mkdir()
    CurvesWriter(str(tmp_path / "diff"), "diffusion").update(rows)
    assert (tmp_path / "diff" / "history.png").read_bytes()[:4] == b"\x89PNG"


def test_curves_writer_redraws_at_most_every_interval_and_at_the_end(tmp_path):
    now = [100.0]
    png = tmp_path / "history.png"
    writer = CurvesWriter(str(tmp_path), "training", min_interval=30.0, clock=lambda: now[0])
    rows = [{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / e, "valid_loss": 1.0, "valid_uar": 0.5,
             "valid_wa": 0.5, "time": 1.0} for e in range(1, 5)]
    writer.update(rows[:1])                  # first update of the process: drawn
    assert png.read_bytes()[:4] == b"\x89PNG"
    png.unlink()
    now[0] += 29.0
    writer.update(rows[:2])                  # 29 s later: not redrawn
    assert not png.exists()
    now[0] += 1.0
    writer.update(rows[:3])                  # 30 s after the last drawing: redrawn
    assert png.exists()
    png.unlink()
    writer.update(rows, final=True)          # the last row: always drawn
    assert png.exists()
    diff = tmp_path / "diff"
    diff.mkdir()
    CurvesWriter(str(diff), "diffusion").update([{"step": 2, "lr": 1e-4, "loss": 0.5, "mse": 0.4, "vb": 0.1}])
    assert (diff / "history.png").read_bytes()[:4] == b"\x89PNG"
