"""SparseGradAdam: plain Adam on dense gradients; on a sparse stream, dense Adam's step size."""
import pytest
import torch

from asrkit.distributed.sparse_adam import SparseGradAdam


def _run(opt_cls, grads, **kw):
    p = torch.nn.Parameter(torch.zeros(grads[0].numel(), dtype=torch.float64))
    opt = opt_cls([p], lr=0.01, **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach().clone()


def test_dense_gradients_give_adam():
    torch.manual_seed(0)
    grads = [torch.randn(50, dtype=torch.float64) for _ in range(30)]
    for wd in (0.0, 0.1):
        ours = _run(SparseGradAdam, grads, weight_decay=wd)
        ref = _run(torch.optim.Adam, grads, weight_decay=wd)
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_sparse_stream_moves_as_dense_adam():
    # an element with gradient g every step, sent as k*g every k-th step (error feedback's view):
    # Adam moves it about sqrt(k) times less than dense Adam; the corrected second moment moves it as far
    k, steps, g = 16, 320, 0.5
    dense = [torch.full((1,), g, dtype=torch.float64) for _ in range(steps)]
    sparse = [torch.full((1,), k * g if (t + 1) % k == 0 else 0.0, dtype=torch.float64) for t in range(steps)]
    moved_dense = -float(_run(torch.optim.Adam, dense))
    moved_adam = -float(_run(torch.optim.Adam, sparse))
    moved_ours = -float(_run(SparseGradAdam, sparse))
    assert moved_dense == pytest.approx(0.01 * steps, rel=1e-6)  # Adam: lr per step for a constant gradient
    assert moved_adam == pytest.approx(moved_dense / k ** 0.5, rel=0.15)
    assert moved_ours == pytest.approx(moved_dense, rel=0.1)


def test_elements_never_sent_stay():
    grads = [torch.tensor([1.0, 0.0], dtype=torch.float64)] * 5
    p = _run(SparseGradAdam, grads)
    assert p[1] == 0.0 and p[0] < 0


def test_bad_options_refused():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="SparseGradAdam"):
        SparseGradAdam([p], lr=0.0)


def test_plain_adam_state_refused():
    p = torch.nn.Parameter(torch.zeros(3))
    adam = torch.optim.Adam([p], lr=0.01)
    p.grad = torch.ones(3)
    adam.step()
    ours = SparseGradAdam([p], lr=0.01)
    ours.load_state_dict(adam.state_dict())
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="another optimiser's state"):
        ours.step()
