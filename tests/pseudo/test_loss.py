import pytest
import torch

from asrkit.pseudo.loss import dense_distillation_loss, hard_ce_loss, topk_distillation_loss

S = 30


def _batch(B=3, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, S, generator=g, dtype=torch.float64).float() * 2
    teacher = torch.softmax(torch.randn(B, T, S, generator=g) * 3, -1)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 2:] = False
    return logits, teacher, mask


def test_k_equal_num_senones_equals_full_ce_and_gradient_matches_dense_autograd():
    logits, teacher, mask = _batch()
    probs, ids = teacher.topk(S, -1)
    a = logits.clone().requires_grad_(True)
    loss = topk_distillation_loss(a, ids.to(torch.uint16).to(torch.int32), probs.half(), mask)
    b = logits.clone().requires_grad_(True)
    # dense reference on the same float16-rounded, renormalised teacher
    q = torch.zeros_like(teacher).scatter(-1, ids, probs.half().float())
    q = q / q.sum(-1, keepdim=True)
    ref = dense_distillation_loss(b, q, mask)
    loss.backward()
    ref.backward()
    # tolerance: float32 rounding of sums over 30 senones and ~15 frames
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
    # masked frames get no gradient
    assert (a.grad[2, 2:] == 0).all() and (a.grad[1, 5:] == 0).all()
    # and an analytic check: dL/dz = (softmax(z) - q) / frames on valid frames
    n = mask.sum()
    expect = (torch.softmax(logits, -1) - q) / n * mask[..., None]
    torch.testing.assert_close(a.grad, expect, rtol=1e-5, atol=1e-7)


def test_topk_is_ce_to_renormalised_topk():
    logits, teacher, mask = _batch(seed=1)
    probs, ids = teacher.topk(5, -1)
    loss = topk_distillation_loss(logits, ids, probs, mask)
    q = torch.zeros_like(teacher).scatter(-1, ids, probs)
    q = q / q.sum(-1, keepdim=True)
    torch.testing.assert_close(loss, dense_distillation_loss(logits, q, mask), rtol=1e-6, atol=1e-6)


def test_padding_values_do_not_matter():
    logits, teacher, mask = _batch(seed=2)
    probs, ids = teacher.topk(5, -1)
    l1 = topk_distillation_loss(logits, ids, probs, mask)
    logits2, probs2, ids2 = logits.clone(), probs.clone(), ids.clone()
    logits2[~mask] = 1e4
    probs2[~mask] = 0.0  # what a padded batch holds: zero probabilities, id 0
    ids2[~mask] = 0
    l2 = topk_distillation_loss(logits2, ids2, probs2, mask)
    assert torch.isfinite(l2) and torch.allclose(l1, l2)


def test_temperature_on_student_logits():
    logits, teacher, mask = _batch(seed=3)
    probs, ids = teacher.topk(S, -1)
    for tau in (0.5, 2.0, 4.0):
        got = topk_distillation_loss(logits, ids, probs, mask, temperature=tau)
        ref = dense_distillation_loss(logits / tau, teacher, mask)
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
        scaled = topk_distillation_loss(logits, ids, probs, mask, temperature=tau, scale_t2=True)
        torch.testing.assert_close(scaled, got * tau ** 2)
    # a higher temperature flattens the student: the loss to a one-hot-ish teacher rises for a peaked student
    peaked = torch.zeros(1, 1, S)
    peaked[..., 0] = 10.0
    one_hot_ids = torch.arange(S)[None, None]
    one_hot_p = torch.zeros(1, 1, S)
    one_hot_p[..., 0] = 1.0
    l1 = topk_distillation_loss(peaked, one_hot_ids, one_hot_p, temperature=1.0)
    l4 = topk_distillation_loss(peaked, one_hot_ids, one_hot_p, temperature=4.0)
    assert l4 > l1
    with pytest.raises(ValueError):
        topk_distillation_loss(logits, ids, probs, mask, temperature=0.0)


def test_hard_ce_matches_torch():
    logits, _, mask = _batch(seed=4)
    tgt = torch.randint(0, S, mask.shape)
    got = hard_ce_loss(logits, tgt, mask)
    ref = torch.nn.functional.cross_entropy(logits[mask], tgt[mask])
    torch.testing.assert_close(got, ref)
