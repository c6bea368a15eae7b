"""python -m asrkit.bin.pseudo_label through utils/run_local.sh JOB=1:2, then --merge-index."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy(tmp_path):
    toycuts = pytest.importorskip("asrkit.testing.cuts")
    from asrkit.nnet.checkpoint import save_checkpoint
    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset

    cuts = toycuts.write_toy_cuts(tmp_path / "data", num_cuts=7, num_senones=20, frames_range=(20, 90))
    cmvn = toycuts.make_toy_cmvn(cuts)
    cmvn.save(tmp_path / "cmvn.npz")
    torch.manual_seed(0)
    cfg = preset("teacher", "tiny", num_senones=20)
    model = build_model(cfg)
    save_checkpoint(tmp_path / "best.pt", {"model_config": cfg.to_dict(), "model": model.state_dict()})
    (tmp_path / "tree").write_bytes(b"fake tree")
    return tmp_path, cuts, model


def test_cli_jobs_and_merge(toy):
    tmp, cuts, model = toy
    out = tmp / "pseudo"
    cmd = [str(REPO / "utils" / "run_local.sh"), "JOB=1:2", str(out / "log" / "label.JOB.log"),
           sys.executable, "-m", "asrkit.bin.pseudo_label", "--model", str(tmp / "best.pt"),
           "--cuts", str(tmp / "data" / "cuts.jsonl.gz"), "--cmvn", str(tmp / "cmvn.npz"),
           "--tree", str(tmp / "tree"), "--out-dir", str(out), "--k", "5", "--shard-size", "2",
           "--job", "JOB", "--num-jobs", "2", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr + "".join(p.read_text() for p in (out / "log").glob("*.log"))
    r = subprocess.run([sys.executable, "-m", "asrkit.bin.pseudo_label", "--out-dir", str(out), "--merge-index"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "4 shards" in r.stdout
    index = json.loads((out / "index.json").read_text())
    assert index["num_senones"] == 20 and index["k"] == 5 and index["totals"]["utts"] == 7

    from asrkit.features.reader import FeatureReader
    from asrkit.pseudo.shards import PseudoLabelReader, tree_checksum

    reader = PseudoLabelReader(out, num_senones=20, tree_checksum=tree_checksum(tmp / "tree"))
    fr = FeatureReader(tmp / "cmvn.npz")
    model.eval()
    for cut in cuts:
        ids, probs = reader.get(cut.id)
        x = torch.from_numpy(fr(cut))[None]
        with torch.no_grad():
            z, _ = model(x, torch.tensor([x.shape[1]]))
        ref = torch.softmax(z[0], -1).topk(5, -1)
        assert torch.equal(ids, ref.indices)


def test_cli_usage_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "asrkit.bin.pseudo_label", "--out-dir", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "--model" in r.stderr
    r = subprocess.run([sys.executable, "-m", "asrkit.bin.pseudo_label", "--out-dir", str(tmp_path),
                        "--merge-index"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and "index.job" in r.stderr
