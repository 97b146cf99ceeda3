"""Autoguidance (ser.diffusion.guidance): the guided prediction, the guide snapshot the trainer
keeps (the EMA weights of its step, across a kill and resume), and sampling with it."""
import numpy as np
import pytest
import torch

from ser.bin import generate, train_diffusion
from ser.diffusion.guidance import AutoGuidedDenoiser, guidance_max_t, guidance_weight, guided_networks
from ser.diffusion.model_io import load_diffusion_model
from ser.errors import SerError

import diffusion_helpers
from diffusion_helpers import gen_args, train_args

corpus = diffusion_helpers.corpus
pytestmark = pytest.mark.usefixtures("one_thread")


class Fixed(torch.nn.Module):
    """A 'denoiser' whose output is out + the condition (to see which condition it was given)."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x, t, cond):
        return self.out + cond


def test_guided_prediction_extrapolates_the_prediction_channels_only():
    x = torch.zeros(2, 3, 5)
    good, bad = torch.randn(2, 6, 5), torch.randn(2, 6, 5)
    guided = AutoGuidedDenoiser(Fixed(good), Fixed(bad), 2.5)
    out = guided(x, torch.zeros(2, dtype=torch.long), (1.0, -1.0))
    g, b = good + 1.0, bad - 1.0                     # each network got its own condition
    torch.testing.assert_close(out[:, :3], b[:, :3] + 2.5 * (g[:, :3] - b[:, :3]))
    torch.testing.assert_close(out[:, 3:], g[:, 3:])   # the learned variance: the model's own
    one = AutoGuidedDenoiser(Fixed(good), Fixed(bad), 1.0)(x, torch.zeros(2, dtype=torch.long), (0.0, 0.0))
    torch.testing.assert_close(one, good)


def test_guidance_only_below_max_t():
    x = torch.zeros(3, 2, 4)
    good, bad = torch.randn(3, 4, 4), torch.randn(3, 4, 4)
    guided = AutoGuidedDenoiser(Fixed(good), Fixed(bad), 3.0, max_t=10)
    out = guided(x, torch.tensor([9, 10, 3]), (0.0, 0.0))
    full = bad[:, :2] + 3.0 * (good[:, :2] - bad[:, :2])
    torch.testing.assert_close(out[[0, 2], :2], full[[0, 2]])
    torch.testing.assert_close(out[1], good[1])           # t = 10: not below max_t, unguided
    torch.testing.assert_close(out[:, 2:], good[:, 2:])
    assert guidance_max_t({"process": {"steps": 4000}, "config": {"guidance": {"max_t_fraction": 0.4}}}) == 1600
    assert guidance_max_t({"process": {"steps": 4000}, "config": {"guidance": {"max_t_fraction": 1.0}}}) is None


def test_weight_comes_from_the_model_unless_given():
    assert guidance_weight({}) == 1.0
    assert guidance_weight({"config": {"guidance": {"snapshot_step": 4, "weight": 2.0}}}) == 2.0
    assert guidance_weight({"config": {"guidance": {"weight": 2.0}}}, 1.0) == 1.0
    nets = {"denoiser": "d", "conditioner": "c"}
    assert guided_networks(nets, {}) == ("d", "c")
    with pytest.raises(SerError, match="no guide snapshot"):
        guided_networks(nets, {}, 2.0)


GUIDED = ["--set", "max_steps=6", "--set", "checkpoint_every=2", "--set", "guidance.snapshot_step=4",
          "--set", "guidance.weight=2.0", "--num-threads", "1"]


def test_guide_is_the_ema_of_its_step_across_a_kill(corpus, tmp_path):
    # the reference: the same run stopped at step 4 (the snapshot must equal its EMA weights)
    short = tmp_path / "short"
    assert train_diffusion.main(train_args(corpus, short, "--set", "max_steps=4", "--set", "checkpoint_every=2",
                                           "--num-threads", "1")) == 0
    ref = torch.load(short / "model.pt", weights_only=False)["nets"]

    class Killed(Exception):
        pass

    def kill_at_4(step):          # after the snapshot's step: the guide must come from the checkpoint
        if step == 4:
            raise Killed
    run = tmp_path / "guided"
    with pytest.raises(Killed):
        train_diffusion.main(train_args(corpus, run, *GUIDED), on_checkpoint=kill_at_4)
    assert train_diffusion.main(train_args(corpus, run, *GUIDED)) == 0
    blob = torch.load(run / "model.pt", weights_only=False)
    assert set(blob["guide"]) == set(ref)
    assert all(torch.equal(blob["guide"][k], ref[k]) for k in ref)
    assert any(not torch.equal(blob["nets"][k], ref[k]) for k in ref if ref[k].is_floating_point())
    nets, meta = load_diffusion_model(run)
    assert "guide" in nets and meta["config"]["guidance"] == {"snapshot_step": 4, "weight": 2.0,
                                                              "max_t_fraction": 1.0}

    # sampling: the model's weight by default, --guidance-weight overrides, recorded in synthetic.yaml
    import kaldiio
    import yaml
    sets = {}
    for name, extra in (("default", ()), ("w1", ("--guidance-weight", "1")), ("w2", ("--guidance-weight", "2"))):
        out = tmp_path / name
        assert generate.main(gen_args(run, out, 1, 4, 7, *extra)) == 0
        sets[name] = dict(kaldiio.load_scp_sequential(str(out / "feats.scp")))
        info = yaml.safe_load((out / "synthetic.yaml").read_text())
        assert info["guidance_weight"] == (1.0 if name == "w1" else 2.0)
    assert all(np.array_equal(sets["default"][u], sets["w2"][u]) for u in sets["w2"])
    assert any(not np.array_equal(sets["w1"][u], sets["w2"][u]) for u in sets["w2"])


def test_guidance_settings_are_checked(corpus, tmp_path, capsys):
    for kv, msg in (("guidance.weight=2.0", "needs a guide"), ("guidance.snapshot_step=6", "snapshot_step"),
                    ("guidance.max_t_fraction=0", "max_t_fraction"), ("guidance.max_t_fraction=1.5", "max_t_fraction"),
                    ("guidance.weight=0", "guidance.weight")):
        with pytest.raises(SerError, match=msg):
            train_diffusion.main(train_args(corpus, "unused", "--set", "max_steps=6", "--set", kv,
                                            "--set", "guidance.snapshot_step=2" if kv.startswith("guidance.weight=0")
                                            else "log_every=2", "--print-config"))


def test_sampling_with_a_weight_needs_a_guide(corpus, tmp_path):
    run = tmp_path / "plain"
    assert train_diffusion.main(train_args(corpus, run, "--set", "max_steps=2", "--num-threads", "1")) == 0
    with pytest.raises(SerError, match="no guide snapshot"):
        generate.main(gen_args(run, tmp_path / "syn", 1, 3, 7, "--guidance-weight", "2"))
    with pytest.raises(SerError, match="--guidance-weight must be > 0"):
        generate.main(gen_args(run, tmp_path / "syn", 1, 3, 7, "--guidance-weight", "0"))
