"""Stage 14 trains the interleaved student on a subset manifest of train_unsup against the pseudo-label
index of the whole set: only the subset's cuts are trained on, the other labelled cuts are unused."""
from __future__ import annotations

import logging

from lhotse import CutSet

from asrkit.features.reader import FeatureReader
from asrkit.nnet.ssl import SslConfig, SslTrainer, open_pseudo_labels
from asrkit.pseudo.schedule import MACHINE

from .conftest import NUM_SENONES
from .test_ssl import _cfg, unsup  # noqa: F401 (the session fixture of labelled toy cuts)


def test_unlabelled_subset_of_the_index(toy_cuts, toy_cmvn_path, unsup, tmp_path, caplog):  # noqa: F811
    everything = list(CutSet.from_file(unsup["cuts"]))
    sub = [c for c in everything if c.id != unsup["left_out"]][:3]
    CutSet.from_cuts(sub).to_file(tmp_path / "sub.jsonl.gz")
    labels = open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["tree"])
    seen, ref = set(), [None]

    def hook(step):
        if ref[0].current["kind"] == MACHINE:
            seen.update(ref[0].current["cut_ids"])

    with caplog.at_level(logging.INFO, logger="asrkit.nnet.ssl"):
        t = SslTrainer(_cfg(num_epochs=1), toy_cuts, tmp_path / "sub.jsonl.gz", toy_cuts,
                       FeatureReader(toy_cmvn_path), tmp_path / "out", SslConfig("interleaved"), labels,
                       step_hook=hook)
    ref[0] = t
    assert sorted(c.id for c in t.machine_set.cuts) == sorted(c.id for c in sub) and t.left_out == []
    # 7 cuts labelled, 3 in the subset
    assert "4 labelled utterances are not in the unlabelled cuts given" in caplog.text
    t.run()
    assert seen == {c.id for c in sub}
