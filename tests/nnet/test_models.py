import pytest
import torch

from asrkit.nnet.losses import IGNORE_INDEX, compute_loss
from asrkit.nnet.models import ModelConfig, build_model, count_parameters_analytic
from asrkit.nnet.presets import preset


@pytest.mark.parametrize("role,target", [("teacher", 78e6), ("student", 24e6)])
def test_paper_parameter_counts(role, target):
    cfg = preset(role, "paper", num_senones=3000, input_dim=192)
    n = count_parameters_analytic(cfg)
    assert abs(n - target) / target < 0.03, n
    model = build_model(cfg, device="meta")  # no memory, no init cost
    assert model.num_parameters() == n
    assert cfg.bidirectional == (role == "teacher")
    assert cfg.hidden_size == (832 if role == "teacher" else 768) and cfg.num_layers == 5


@pytest.mark.parametrize("proj", [0, 16])
@pytest.mark.parametrize("bidir", [False, True])
def test_analytic_count_matches_torch(proj, bidir):
    cfg = ModelConfig(input_dim=20, num_senones=7, num_layers=3, hidden_size=24, proj_size=proj, bidirectional=bidir)
    assert build_model(cfg).num_parameters() == count_parameters_analytic(cfg)


@pytest.mark.parametrize("proj", [0, 16])
@pytest.mark.parametrize("chunk", [1, 7, 32])
def test_streaming_equals_whole_utterance(proj, chunk):
    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=192, num_senones=30, num_layers=3, hidden_size=48, proj_size=proj)
    model = build_model(cfg).eval()
    x = torch.randn(2, 101, 192)
    with torch.no_grad():
        whole, _ = model(x)
        state, outs = None, []
        for s in range(0, 101, chunk):
            o, state = model(x[:, s:s + chunk], state=state)
            outs.append(o)
    torch.testing.assert_close(torch.cat(outs, 1), whole, atol=1e-5, rtol=0)


def test_bidirectional_refuses_state():
    model = build_model(ModelConfig(input_dim=8, num_senones=5, num_layers=1, hidden_size=8, bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional"):
        model(torch.randn(1, 4, 8), state=(torch.zeros(2, 1, 8), torch.zeros(2, 1, 8)))


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("bidir", [False, True])
def test_padding_changes_neither_loss_nor_gradient(bidir):
    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=12, num_senones=9, num_layers=2, hidden_size=16, bidirectional=bidir)
    model = build_model(cfg)
    lens = torch.tensor([10, 6])
    x = torch.randn(2, 10, 12)
    tg = torch.randint(0, 9, (2, 10))
    tg[1, 6:] = IGNORE_INDEX
    tg[0, :2] = IGNORE_INDEX  # unscored left context
    x[1, 6:] = 0.0

    def run(x, tg):
        model.zero_grad()
        logits, _ = model(x, lens)
        st = compute_loss(logits, {"kind": "hard", "targets": tg})
        st.loss.backward()
        return st, _grads(model)

    st1, g1 = run(x, tg)
    # garbage in the padding, and more of it
    x2 = torch.cat([x, 100 * torch.randn(2, 5, 12)], 1)
    x2[1, 6:10] = 1e3 * torch.randn(4, 12)
    tg2 = torch.cat([tg, torch.full((2, 5), IGNORE_INDEX)], 1)
    st2, g2 = run(x2, tg2)
    assert int(st1.frames) == int(st2.frames) == 14
    torch.testing.assert_close(st2.loss, st1.loss, atol=1e-6, rtol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
