"""ser.attacks (FGSM, BIM on normalised feature segments) and ser.bin.score_attack."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ser.attacks import bim, fgsm
from ser.errors import SerError

T, D, C = 6, 8, 3


class LinearSoftmax(nn.Module):
    """logits = W·vec(x) + b, with x (batch, T, D)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(T * D, C)

    def forward(self, x):
        return self.lin(x.reshape(len(x), -1))


class SmallNet(nn.Module):
    """Non-linear model with BatchNorm and dropout, so that train/eval mode matters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(T * D, 32), nn.BatchNorm1d(32), nn.Tanh(),
                                 nn.Dropout(0.5), nn.Linear(32, C))

    def forward(self, x):
        return self.net(x)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    centers = torch.randn(C, T, D, generator=g) * 0.5
    return centers[y] + torch.randn(n, T, D, generator=g), y


@pytest.fixture(scope="module")
def trained_state():
    """State dict of a SmallNet trained on `_data` (trained once per module)."""
    torch.manual_seed(0)
    model = SmallNet()
    x, y = _data(128)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def _trained_small_net(state):
    model = SmallNet()
    model.load_state_dict(state)
    return model


def _loss(model, x, y):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_fgsm_equals_analytic_gradient_sign():
    torch.manual_seed(1)
    model = LinearSoftmax().double()
    x, y = _data(10)
    x = x.double()
    eps = 0.08
    adv = fgsm(model, x, y, eps)
    # ∇_x CE(Wx + b, y) = Wᵀ(softmax(Wx + b) − onehot(y)), computed by hand in numpy.
    W = model.lin.weight.detach().numpy()
    b = model.lin.bias.detach().numpy()
    xv = x.numpy().reshape(10, -1)
    logits = xv @ W.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(C)[y.numpy()]) @ W
    expected = xv + eps * np.sign(grad)
    np.testing.assert_array_equal(adv.numpy().reshape(10, -1), expected)
    assert not adv.requires_grad


def test_mask_limits_the_perturbation():
    torch.manual_seed(2)
    model = LinearSoftmax()
    x, y = _data(4)
    mask = torch.zeros(4, T, 1)
    mask[:, :4] = 1
    for adv in (fgsm(model, x, y, 0.1, mask=mask), bim(model, x, y, 0.1, alpha=0.03, steps=5, mask=mask)):
        assert torch.equal(adv[:, 4:], x[:, 4:])
        assert (adv[:, :4] - x[:, :4]).abs().max() > 0.05


def test_bim_stays_in_ball_and_beats_clean_and_fgsm(trained_state):
    model = _trained_small_net(trained_state)
    x, y = _data(64, seed=1)
    eps = 0.08
    adv_f = fgsm(model, x, y, eps)
    adv_b = bim(model, x, y, eps, alpha=0.01, steps=10)
    assert (adv_b - x).abs().max() <= eps + 1e-6
    assert (adv_f - x).abs().max() == pytest.approx(eps, abs=1e-6)
    clean, lf, lb = (_loss(model, v, y).sum().item() for v in (x, adv_f, adv_b))
    assert lb > lf > clean
    # a step size larger than eps is projected back onto the ball
    adv_big = bim(model, x, y, eps, alpha=0.5, steps=3)
    assert (adv_big - x).abs().max() == pytest.approx(eps, abs=1e-6)


def test_params_mode_and_stats_untouched(trained_state):
    model = _trained_small_net(trained_state)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _data(16, seed=2)
    x_before = x.clone()
    a1 = fgsm(model, x, y, 0.08)
    a2 = fgsm(model, x, y, 0.08)
    b1 = bim(model, x, y, 0.08, 0.01, 5)
    b2 = bim(model, x, y, 0.08, 0.01, 5)
    # eval mode inside: dropout off, so the attack is deterministic and BN running stats unchanged
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, x_before) and x.grad is None


def test_zero_eps_and_bad_arguments():
    model = LinearSoftmax()
    x, y = _data(4)
    assert torch.equal(fgsm(model, x, y, 0.0), x)
    assert torch.equal(bim(model, x, y, 0.0, 0.01, 3), x)
    with pytest.raises(SerError, match="eps"):
        fgsm(model, x, y, -0.1)
    with pytest.raises(SerError, match="y must be"):
        fgsm(model, x, y[:2], 0.1)
    with pytest.raises(SerError, match="alpha"):
        bim(model, x, y, 0.1, alpha=0, steps=3)


# --- ser.bin.score_attack ------------------------------------------------------------------

def _tiny_model_dir(tmp_path):
    """A trained `cnn` (one 4-channel conv) on synthetic 8-dim features of 3 classes, with feats."""
    import kaldiio

    from ser.models import build_model
    from ser.training.inference import prepare_segments
    from ser.training.model_io import save_model
    from ser.training.normalization import compute_stats

    classes = ["anger", "neutral", "sadness"]
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1.0, (3, D))
    feats, emo, spk = {}, {}, {}
    for k in range(30):
        c = k % 3
        u = f"s{k % 2}-u{k:02d}"
        nfr = int(rng.integers(20, 50))  # shorter and longer than the 32-frame segment
        feats[u] = (5 + centers[c] + rng.normal(0, 1.0, (nfr, D))).astype(np.float32)
        emo[u], spk[u] = classes[c], f"s{k % 2}"
    fd = tmp_path / "feats"
    fd.mkdir()
    kaldiio.save_ark(str(fd / "feats.ark"), feats, scp=str(fd / "feats.scp"))
    (fd / "utt2emo").write_text("".join(f"{u} {e}\n" for u, e in sorted(emo.items())))
    (fd / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(spk.items())))
    (tmp_path / "test.list").write_text("".join(f"{u}\n" for u in sorted(feats)))

    mean, std = compute_stats(feats.values())
    conf = {"conv_channels": [4], "fc_dim": 16, "dropout": 0.0}
    meta = {"model_name": "cnn", "model_conf": conf, "num_classes": 3, "classes": classes, "feat_dim": D,
            "segment": {"length": 32, "shift": 16}, "cmvn_mean": mean.tolist(), "cmvn_std": std.tolist(),
            "feat_conf": {"type": "synthetic"}}
    torch.manual_seed(0)
    model = build_model("cnn", 3, D, **conf)
    segs, labels = [], []
    for u, m in feats.items():
        s = prepare_segments(meta, m)
        segs.append(s)
        labels += [classes.index(emo[u])] * len(s)
    x, y = torch.as_tensor(np.concatenate(segs)), torch.as_tensor(labels)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    md = tmp_path / "exp"
    md.mkdir()
    save_model(md / "model.pt", model, meta)
    (md / "done").write_text("")  # a finished training: scoring refuses others
    return md, fd, tmp_path / "test.list"


def test_score_attack_outputs_and_uar_drop(tmp_path):
    from ser.bin import score, score_attack

    md, fd, lst = _tiny_model_dir(tmp_path)
    assert score.main(["--model-dir", str(md), "--feats-dir", str(fd), "--utt-list", str(lst),
                       "--out", str(tmp_path / "clean")]) == 0
    clean = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    assert clean["uar"] > 0.6  # the tiny model learned something to attack
    results = {}
    for name, extra in (("fgsm", []), ("bim", ["--alpha", "0.1", "--steps", "5"])):
        out = tmp_path / name
        assert score_attack.main(["--model-dir", str(md), "--feats-dir", str(fd), "--utt-list", str(lst),
                                  "--attack", name, "--eps", "0.5", "--out", str(out)] + extra) == 0
        for f in ("predictions.tsv", "metrics.json", "confusion.png", "done"):
            assert (out / f).is_file(), f
        m = json.loads((out / "metrics.json").read_text())
        assert len((out / "predictions.tsv").read_text().splitlines()) == 31
        assert m["attack"] == name and m["eps"] == 0.5 and m["num_utts"] == 30
        assert m["clean_uar"] == pytest.approx(clean["uar"], abs=1e-9)
        results[name] = m["uar"]
    assert results["fgsm"] < clean["uar"] and results["bim"] <= results["fgsm"]
    # eps 0 reproduces clean scoring exactly
    assert score_attack.main(["--model-dir", str(md), "--feats-dir", str(fd), "--utt-list", str(lst),
                              "--attack", "fgsm", "--eps", "0", "--out", str(tmp_path / "zero")]) == 0
    assert (tmp_path / "zero" / "predictions.tsv").read_text() == (tmp_path / "clean" / "predictions.tsv").read_text()


def test_real_frame_mask():
    from ser.bin.score_attack import real_frame_mask

    meta = {"segment": {"length": 32, "shift": 16}}
    m = real_frame_mask(20, meta)
    assert m.shape == (1, 32, 1) and m[0, :20].all() and not m[0, 20:].any()
    assert real_frame_mask(50, meta).all() and real_frame_mask(50, meta).shape == (3, 32, 1)


def test_score_attack_rescores_when_eps_changes(tmp_path, capsys):
    from ser.bin import score_attack

    md, fd, lst = _tiny_model_dir(tmp_path)
    out = tmp_path / "fgsm"
    base = ["--model-dir", str(md), "--feats-dir", str(fd), "--utt-list", str(lst), "--attack", "fgsm",
            "--out", str(out)]
    assert score_attack.main(base + ["--eps", "0"]) == 0
    capsys.readouterr()
    assert score_attack.main(base + ["--eps", "0"]) == 0  # same settings, inputs unchanged: skipped
    assert "already scored" in capsys.readouterr().out
    assert score_attack.main(base + ["--eps", "0.5"]) == 0  # another eps: scored again
    assert "already scored" not in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["eps"] == 0.5
