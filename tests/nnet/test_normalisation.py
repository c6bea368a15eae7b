"""The networks' feature normalisation (``cmvn: global | speaker | utterance`` in the training config):
recorded in the checkpoint, applied by training, pseudo-labelling and nnet_forward alike."""
import numpy as np
import pytest

from asrkit.features.reader import FeatureReader
from asrkit.nnet.checkpoint import ConfigMismatchError, load_checkpoint
from asrkit.nnet.dataset import checkpoint_norm, reader_for_checkpoint, reader_with_norm
from asrkit.nnet.infer import load_model, log_posteriors, log_priors_from_counts
from asrkit.nnet.train import Trainer

from .conftest import NUM_SENONES
from .test_ssl import unsup  # noqa: F401 - the fixture
from .test_train import _cfg


@pytest.mark.parametrize("norm", ["utterance", "speaker"])
def test_trainer_applies_and_records_the_normalisation(norm, toy_cuts, toy_cmvn_path, tmp_path):
    t = Trainer(_cfg(num_epochs=1, cmvn_mode=norm), toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "exp")
    assert t.train_set.reader.norm == norm and t.dev_set.reader.norm == norm
    cut = list(toy_cuts)[2]
    # the toy cuts have no supervisions: each is its own speaker, so both modes give the utterance's statistics
    want = FeatureReader(toy_cmvn_path).with_norm("utterance")(cut)
    np.testing.assert_array_equal(t.train_set.reader(cut), want)
    assert not np.allclose(want, FeatureReader(toy_cmvn_path)(cut), atol=1e-2)
    t.run()
    for name in ("best.pt", "epoch-1.pt"):
        assert checkpoint_norm(tmp_path / "exp" / name) == norm
    assert reader_for_checkpoint(tmp_path / "exp" / "best.pt", toy_cmvn_path, toy_cuts).norm == norm
    # resuming that run with another normalisation is refused: its weights expect the other inputs
    with pytest.raises(ConfigMismatchError, match=f"trained with cmvn_mode '{norm}', now 'global'"):
        Trainer(_cfg(num_epochs=2), toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "exp")


def test_old_checkpoints_and_other_readers_are_global(toy_cmvn_path):
    assert checkpoint_norm({"model_config": {}}) == "global"
    assert checkpoint_norm({"train_config": {"cmvn_mode": "utterance"}}) == "utterance"
    with pytest.raises(ValueError, match="cmvn_mode must be one of"):
        checkpoint_norm({"train_config": {"cmvn_mode": "per-file"}})
    plain = lambda cut: None  # noqa: E731 - any callable reader
    assert reader_with_norm(plain, "global") is plain
    with pytest.raises(ValueError, match="needs an asrkit.features.reader.FeatureReader"):
        reader_with_norm(plain, "utterance")


def test_cli_train_per_utterance_then_forward_and_label(toy_dir, tmp_path):
    """train_nnet reads ``cmvn`` and the SpecAugment keys from the yaml; nnet_forward and pseudo_label
    then feed the network per-utterance normalised features without being told."""
    import kaldiio

    from asrkit.bin import nnet_forward, pseudo_label, train_nnet
    from asrkit.pseudo.shards import PseudoLabelReader

    np.save(tmp_path / "counts.npy", np.arange(NUM_SENONES) + 1.0)
    (tmp_path / "teacher.yaml").write_text(
        "role: teacher\npreset: tiny\nnum_epochs: 1\nmax_frames: 500\nnum_workers: 0\nprogress: false\n"
        "cmvn_mode: utterance\nspecaug_time_masks: 2\nspecaug_freq_masks: 2\nlabel_smoothing: 0.1\n")
    cuts, cmvn = str(toy_dir / "cuts.jsonl.gz"), str(toy_dir / "cmvn.npz")
    exp = tmp_path / "exp"
    assert train_nnet.main(["--config", str(tmp_path / "teacher.yaml"), "--train-cuts", cuts, "--dev-cuts", cuts,
                            "--cmvn", cmvn, "--num-senones", str(NUM_SENONES), "--out-dir", str(exp),
                            "--tensorboard", "false"]) == 0
    tc = load_checkpoint(exp / "best.pt")["train_config"]
    assert (tc["cmvn_mode"], tc["specaug_time_masks"], tc["label_smoothing"]) == ("utterance", 2, 0.1)
    assert nnet_forward.main(["--model", str(exp / "best.pt"), "--cuts", cuts, "--cmvn", cmvn,
                              "--priors", str(tmp_path / "counts.npy"), "--out", str(tmp_path / "scores")]) == 0
    model, _, _ = load_model(exp / "best.pt")
    utt = FeatureReader(cmvn).with_norm("utterance")
    lp = log_priors_from_counts(np.arange(NUM_SENONES) + 1.0)
    got = dict(kaldiio.load_scp(str(tmp_path / "scores" / "scores.scp")))
    from lhotse import CutSet

    for cut in CutSet.from_file(cuts):
        np.testing.assert_allclose(got[cut.id], log_posteriors(model, utt(cut)) - lp, atol=1e-4)
    assert pseudo_label.main(["--model", str(exp / "best.pt"), "--cuts", cuts, "--cmvn", cmvn,
                              "--out-dir", str(tmp_path / "pseudo"), "--k", "3", "--num-senones",
                              str(NUM_SENONES), "--no-progress"]) == 0
    assert pseudo_label.main(["--out-dir", str(tmp_path / "pseudo"), "--merge-index"]) == 0
    labels = PseudoLabelReader(tmp_path / "pseudo")
    cut = CutSet.from_file(cuts)[0]
    ids, _ = labels.get(cut.id)
    top1 = log_posteriors(model, utt(cut)).argmax(-1)
    assert (np.asarray(ids)[:, 0] == top1).mean() == 1.0


def test_student_normalises_labelled_unlabelled_and_dev_alike(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    """The semi-supervised student: speaker statistics cover the labelled, unlabelled and dev cuts, and
    both of its datasets read with them."""
    from .test_ssl import _cfg as ssl_cfg
    from .test_ssl import _trainer

    t = _trainer(ssl_cfg(num_epochs=1, cmvn_mode="speaker"), toy_cuts, toy_cmvn_path, unsup, tmp_path / "s")
    assert t.machine_set.reader is t.train_set.reader and t.train_set.reader.norm == "speaker"
    from lhotse import CutSet

    unl = CutSet.from_file(unsup["cuts"])[0]
    assert unl.id in t.train_set.reader.speaker_stats and list(toy_cuts)[0].id in t.train_set.reader.speaker_stats
    np.testing.assert_array_equal(t.machine_set.reader(unl), FeatureReader(toy_cmvn_path).with_norm("utterance")(unl))
    t.run()
    assert checkpoint_norm(tmp_path / "s" / "best.pt") == "speaker"
