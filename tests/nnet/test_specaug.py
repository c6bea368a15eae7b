"""SpecAugment of training batches (asrkit.nnet.specaug): exact masks on hand-made inputs, refusals,
training-only application, bit-identical resume."""
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.nnet.specaug import SpecAugConfig, SpecAugment, make_specaug
from asrkit.nnet.train import TrainConfig, Trainer

from .conftest import NUM_SENONES
from .test_train import Kill, _cfg, _params

B, T, F = 3, 10, 64


def _ramp():
    """(B, T, 192) stacked frames whose 10 ms frame t, bin f of row b holds 1 + b*10^5 + t*100 + f."""
    b = torch.arange(B)[:, None, None] * 100000
    t = torch.arange(3 * T)[None, :, None] * 100
    f = torch.arange(F)[None, None, :]
    return (1.0 + b + t + f).float().reshape(B, T, 3 * F)


def test_masks_act_on_10ms_frames_and_log_mel_bins():
    aug = SpecAugment(SpecAugConfig(time_masks=2, time_width=7, freq_masks=2, freq_width=9, time_max_fraction=1.0),
                      seed=3)
    x, lengths = _ramp(), torch.tensor([10, 4, 7])
    y = aug(x, lengths, step=5)
    tmask, fmask = aug.masks(lengths, T, step=5)
    y10, x10 = y.reshape(B, 3 * T, F), x.reshape(B, 3 * T, F)
    zeroed = tmask[:, :, None] | fmask[:, None, :]
    assert torch.equal(y10 == 0, zeroed)  # the ramp has no zeros: every zero is masked, nothing else changed
    assert torch.equal(y10[~zeroed], x10[~zeroed])
    # the three stacked copies of a 30 ms frame lose the same bins
    for b in range(B):
        for k in range(3):
            assert torch.equal(y[b, :, k * F:(k + 1) * F] == 0, zeroed[b, k::3, :])
    # time masks stay inside each row's 3 * length 10 ms frames
    for b, n in enumerate(lengths.tolist()):
        assert not tmask[b, 3 * n:].any()
    assert tmask.any() and fmask.any()
    # widths: at most the configured ones
    for b in range(B):
        assert fmask[b].sum() <= 2 * 9 and tmask[b].sum() <= 2 * 7


def test_masks_are_a_function_of_seed_step_and_worker():
    aug = SpecAugment(SpecAugConfig(time_masks=2, time_width=20, freq_masks=2, freq_width=8), seed=1)
    lengths = torch.tensor([10, 10, 10])
    a = aug.masks(lengths, T, step=7)
    assert all(torch.equal(u, v) for u, v in zip(a, aug.masks(lengths, T, step=7)))
    assert not torch.equal(a[1], aug.masks(lengths, T, step=8)[1])
    assert not torch.equal(a[1], aug.masks(lengths, T, step=7, worker=1)[1])
    # the global RNG is untouched (dropout masks do not shift)
    torch.manual_seed(0)
    ref = torch.rand(3)
    torch.manual_seed(0)
    aug(_ramp(), lengths, step=1)
    assert torch.equal(torch.rand(3), ref)


@pytest.mark.parametrize("kw, match", [
    (dict(specaug_freq_masks=1, specaug_freq_width=65), "specaug_freq_width 65 is wider than the 64"),
    (dict(specaug_time_masks=1, specaug_time_width=100, chunk_size=30), "specaug_time_width 100"),
    (dict(specaug_time_masks=-1), "specaug_time_masks must be an integer >= 0"),
    (dict(specaug_time_masks=1, specaug_time_max_fraction=0.0), "specaug_time_max_fraction"),
    (dict(specaug_freq_masks=1, input_dim=130), "the network's input_dim is 130"),
])
def test_options_that_make_no_sense_are_refused_at_start(kw, match, toy_cuts, toy_cmvn_path, tmp_path):
    with pytest.raises(ValueError, match=match):
        Trainer(_cfg(**kw), toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "exp")


def test_off_by_default_and_on_from_the_config():
    assert make_specaug(TrainConfig(num_senones=4)) is None
    aug = make_specaug(TrainConfig(num_senones=4, seed=9, specaug_time_masks=2, specaug_freq_masks=1))
    assert aug.cfg == SpecAugConfig(time_masks=2, time_width=20, freq_masks=1, freq_width=8) and aug.seed == 9


def test_masking_changes_training_steps_only(toy_cuts, toy_cmvn_path, tmp_path):
    """Same seed with and without masks: evaluation of the same weights is bit-identical (the trainer's
    evaluation never masks), one training step on the same batch is not."""
    reader = FeatureReader(toy_cmvn_path)
    on = Trainer(_cfg(specaug_time_masks=2, specaug_freq_masks=2), toy_cuts, toy_cuts, reader, tmp_path / "on")
    off = Trainer(_cfg(), toy_cuts, toy_cuts, reader, tmp_path / "off")
    assert on.evaluate() == off.evaluate()
    batch = next(iter(off.epoch_batches(0, 0)[1]))[0]
    on.train_step(dict(batch), 0)
    off.train_step(dict(batch), 0)
    p_on, p_off = _params(on), _params(off)
    assert any(not torch.equal(p_on[k], p_off[k]) for k in p_on)
    off.model.load_state_dict(on.model.state_dict())  # the same weights: the same dev numbers
    assert on.evaluate() == off.evaluate()


def test_resume_with_masks_gives_the_same_parameters(toy_cuts, toy_cmvn_path, tmp_path):
    reader = FeatureReader(toy_cmvn_path)
    cfg = _cfg(dropout=0.3, checkpoint_every=3, keep_last=2, specaug_time_masks=2, specaug_freq_masks=2)
    full = Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "a")
    full.run()
    plain = Trainer(_cfg(dropout=0.3, checkpoint_every=3, keep_last=2), toy_cuts, toy_cuts, reader, tmp_path / "p")
    plain.run()
    assert any(not torch.equal(v, plain.model.state_dict()[k]) for k, v in _params(full).items())
    kill_at = full.sampler.num_batches(0) + 2

    def killer(step):
        if step == kill_at:
            raise Kill()

    with pytest.raises(Kill):
        Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "b", step_hook=killer).run()
    resumed = Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "b")
    assert resumed.resumed_from is not None
    resumed.run()
    for k, v in _params(full).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
