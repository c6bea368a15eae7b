"""Regularisation options of the trainer: label smoothing (hard targets only) and weight decay."""
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.nnet.losses import compute_loss, hard_ce_loss
from asrkit.nnet.train import Trainer

from .test_train import _cfg


def test_label_smoothing_against_the_formula():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]])
    targets = torch.tensor([[0, -100]])  # the second frame is not scored
    eps = 0.3
    logp = torch.log_softmax(logits[0, 0], -1)
    want = (1 - eps) * -logp[0] + eps * -logp.mean()
    st = hard_ce_loss(logits, targets, label_smoothing=eps)
    assert st.loss_sum.item() == pytest.approx(want.item(), rel=1e-6) and int(st.frames) == 1
    assert hard_ce_loss(logits, targets).loss_sum.item() == pytest.approx(-logp[0].item(), rel=1e-6)
    # soft batches (teacher posteriors) are not smoothed
    soft = {"kind": "soft", "topk_ids": torch.tensor([[[0, 2], [1, 2]]]),
            "topk_probs": torch.tensor([[[0.7, 0.3], [0.5, 0.5]]]), "mask": torch.tensor([[True, True]])}
    assert compute_loss(logits, soft, label_smoothing=eps).loss_sum.item() == pytest.approx(
        compute_loss(logits, soft).loss_sum.item())


def test_label_smoothing_out_of_range_is_refused(toy_cuts, toy_cmvn_path, tmp_path):
    with pytest.raises(ValueError, match="label_smoothing"):
        Trainer(_cfg(label_smoothing=1.0), toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "exp")


def test_weight_decay_reaches_the_optimiser(toy_cuts, toy_cmvn_path, tmp_path):
    """weight_decay goes to Adam (L2 in the gradient), AdamW (decoupled) or SGD as configured."""
    for opt, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        t = Trainer(_cfg(optimizer=opt, weight_decay=0.01), toy_cuts, None, FeatureReader(toy_cmvn_path),
                    tmp_path / opt)
        assert type(t.opt) is cls and t.opt.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="adam | adamw | sgd"):
        Trainer(_cfg(optimizer="lamb"), toy_cuts, None, FeatureReader(toy_cmvn_path), tmp_path / "x")
