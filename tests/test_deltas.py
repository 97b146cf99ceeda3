"""Delta features as input maps of the 2-D conv models (model option `deltas`): the regression
against a loop over the HTK formula and torchaudio's compute_deltas, the models' input channels,
and a trained model that keeps the option in inference."""
import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from ser.errors import SerError
from ser.features.deltas import regression_deltas, with_deltas
from ser.models import build_model
from ser.training.inference import utterance_posteriors
from ser.training.model_io import load_model

from test_train_program import CONFIG, train_toy


def htk_deltas(c, window):
    """d_t = sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2), frame indices clamped to the sequence."""
    T = len(c)
    denom = 2 * sum(n * n for n in range(1, window + 1))
    return np.array([sum(n * (c[min(t + n, T - 1)] - c[max(t - n, 0)]) for n in range(1, window + 1)) / denom
                     for t in range(T)])


@pytest.mark.parametrize("window", [1, 2, 3])
def test_deltas_follow_the_regression_formula(window):
    x = np.random.default_rng(window).normal(size=(2, 11, 4)).astype(np.float32)
    got = regression_deltas(torch.from_numpy(x), window).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], htk_deltas(x[b].astype(np.float64), window), atol=1e-5)
    # torchaudio: (..., dim, time) with a window of 2N+1 frames and replicated edges
    reference = AF.compute_deltas(torch.from_numpy(x).transpose(1, 2), win_length=2 * window + 1).transpose(1, 2)
    np.testing.assert_allclose(got, reference.numpy(), atol=1e-5)


def test_a_ramp_has_its_slope_as_delta_and_no_delta_delta_inside():
    t = torch.arange(20, dtype=torch.float32)
    x = (0.5 * t[:, None] + torch.tensor([1.0, -2.0])).unsqueeze(0)     # (1, 20, 2)
    image = with_deltas(x, 2)
    assert image.shape == (1, 3, 20, 2)
    assert torch.equal(image[:, 0], x)
    torch.testing.assert_close(image[0, 1, 2:-2], torch.full((16, 2), 0.5))
    torch.testing.assert_close(image[0, 2, 4:-4], torch.zeros(12, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):                  # no matmul: stays fp32
        assert with_deltas(x, 2).dtype == torch.float32
    with pytest.raises(SerError, match="delta window must be >= 1"):
        regression_deltas(x, 0)


@pytest.mark.parametrize("model", ["cnn", "cnn_lstm", "densenet", "densenet_lstm", "densenet_lstm_highway"])
def test_models_read_one_map_per_derivative(model):
    first_conv = lambda net: next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    plain = build_model(model, 4, 64)
    assert first_conv(plain).in_channels == 1
    net = build_model(model, 4, 64, deltas=2)
    assert first_conv(net).in_channels == 3
    assert net(torch.randn(2, 32, 64)).shape == (2, 4)
    # the static map is the first channel: zero weights on the derivative maps give the plain model
    state = net.state_dict()
    for key, value in plain.state_dict().items():
        state[key] = value if value.shape == state[key].shape else torch.cat(
            [value, torch.zeros_like(state[key][:, 1:])], dim=1)
    net.load_state_dict(state)
    net.eval(), plain.eval()
    x = torch.randn(2, 32, 64)
    torch.testing.assert_close(net(x), plain(x))
    with pytest.raises(SerError, match="option 'deltas' must be 0, 1 or 2, got 3"):
        build_model(model, 4, 64, deltas=3)


def test_a_trained_model_keeps_its_deltas_in_inference(tmp_path):
    corpus, outdir, proc = train_toy(tmp_path, ["--max-epochs", "1"],
                                     config=CONFIG.replace("dropout: 0.1}", "dropout: 0.1, deltas: 2}"))
    assert proc.returncode == 0, proc.stderr
    model, meta = load_model(str(outdir / "model.pt"))
    assert meta["model_conf"]["deltas"] == 2
    assert model.convs[0].in_channels == 3
    test = {u: corpus["mats"][u] for u in corpus["lists"]["test"]}
    post = utterance_posteriors(model, meta, test, "cpu")
    for u in test:
        assert post[u].shape == (meta["num_classes"],) and abs(post[u].sum() - 1) < 1e-5
