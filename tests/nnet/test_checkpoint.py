"""Checkpoint averaging (icefall's --avg): the exact mean, the last epochs by number, refusals, the CLI."""
import pytest
import torch

from asrkit.bin import average_checkpoints
from asrkit.nnet.checkpoint import (ConfigMismatchError, average_models, last_epoch_checkpoints, load_checkpoint,
                                    save_checkpoint)
from asrkit.nnet.presets import preset


def _ck(path, fill, cfg=None, step=0):
    cfg = cfg or preset("student", "tiny", num_senones=5, input_dim=6)
    from asrkit.nnet.models import build_model

    model = build_model(cfg)
    sd = {k: (torch.full_like(v, fill) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    save_checkpoint(path, {"model_config": cfg.to_dict(), "model": sd, "step": step, "epoch": step})
    return path


def test_average_is_the_mean_of_the_weights(tmp_path):
    paths = [_ck(tmp_path / f"epoch-{i}.pt", float(i), step=i) for i in (1, 2, 6)]
    ck = average_models(paths)
    assert ck["averaged"] == ["epoch-1.pt", "epoch-2.pt", "epoch-6.pt"] and ck["step"] == 6
    for v in ck["model"].values():
        if v.is_floating_point():
            assert torch.all(v == 3.0)


def test_last_epochs_by_number_and_refusals(tmp_path):
    for i in (1, 2, 9, 10):
        _ck(tmp_path / f"epoch-{i}.pt", 0.0)
    (tmp_path / "checkpoint-500.pt").write_bytes(b"")  # a step checkpoint: not an epoch
    assert [p.name for p in last_epoch_checkpoints(tmp_path, 2)] == ["epoch-9.pt", "epoch-10.pt"]
    with pytest.raises(ValueError, match="4 epoch checkpoints .* fewer than the 5"):
        last_epoch_checkpoints(tmp_path, 5)
    other = _ck(tmp_path / "other.pt", 0.0, preset("student", "tiny", num_senones=7, input_dim=6))
    with pytest.raises(ConfigMismatchError, match="other.pt: another model"):
        average_models([tmp_path / "epoch-1.pt", other])


def test_cli_writes_once_and_redoes_when_inputs_change(tmp_path, caplog):
    for i in (1, 2, 3):
        _ck(tmp_path / f"epoch-{i}.pt", float(i), step=i)
    assert average_checkpoints.main(["--dir", str(tmp_path), "--last", "2"]) == 0
    out = tmp_path / "avg.pt"
    assert load_checkpoint(out)["averaged"] == ["epoch-2.pt", "epoch-3.pt"]
    stamp = out.stat().st_mtime_ns
    assert average_checkpoints.main(["--dir", str(tmp_path), "--last", "2"]) == 0
    assert out.stat().st_mtime_ns == stamp  # up to date: left as it is
    assert average_checkpoints.main(["--dir", str(tmp_path), "--last", "3"]) == 0
    ck = load_checkpoint(out)
    assert ck["averaged"] == ["epoch-1.pt", "epoch-2.pt", "epoch-3.pt"]
    assert all(torch.all(v == 2.0) for v in ck["model"].values() if v.is_floating_point())
    assert average_checkpoints.main(["--dir", str(tmp_path), "--last", "4"]) == 1  # named, not a traceback
