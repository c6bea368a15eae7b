"""Labelled cuts for the network tests and benchmarks: 64-dim "fbank" stored with lhotse's Lilcom writer,
per-30 ms senone targets (int16, NumpyFilesWriter) attached as the custom field ``senones``, exactly as
stage 6 writes them. Features are a per-senone prototype plus noise, so a model can learn them."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from lhotse import CutSet, Features, LilcomChunkyWriter, MonoCut, NumpyFilesWriter

from asrkit.features.cmvn import CmvnStats, accumulate_cmvn
from asrkit.features.stack import num_stacked_frames, stack_labels


def write_toy_cuts(out_dir: Union[str, Path], num_cuts: int = 8, num_senones: int = 20,
                   frames_range=(60, 240), seed: int = 0, noise: float = 0.5, prefix: str = "utt",
                   lengths: Optional[Sequence[int]] = None, manifest: Optional[str] = "cuts.jsonl.gz") -> CutSet:
    """Write ``num_cuts`` cuts under ``out_dir`` and return the CutSet (also saved as ``manifest``).

    ``lengths``: 10 ms frame counts per cut (default: uniform in ``frames_range``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(12345).normal(0.0, 1.0, (num_senones, 64)).astype(np.float32) * 2 + 5
    if lengths is None:
        lengths = rng.integers(frames_range[0], frames_range[1] + 1, size=num_cuts)
    cuts = []
    with LilcomChunkyWriter(out / "feats.lca") as fw, NumpyFilesWriter(out / "targets") as tw:
        for i, n in enumerate(lengths):
            n = int(n)
            cid = f"{prefix}{i:04d}"
            lab10 = np.empty(n, dtype=np.int64)
            pos = 0
            while pos < n:
                run = int(rng.integers(3, 15))
                lab10[pos:pos + run] = rng.integers(0, num_senones)
                pos += run
            feats = protos[lab10] + noise * rng.standard_normal((n, 64)).astype(np.float32)
            key = fw.write(cid, feats)
            f = Features(type="fbank", num_frames=n, num_features=64, frame_shift=0.01, sampling_rate=16000,
                         start=0.0, duration=round(n * 0.01, 6), storage_type=fw.name,
                         storage_path=str(fw.storage_path), storage_key=key)
            cut = MonoCut(id=cid, start=0.0, duration=round(n * 0.01, 6), channel=0, features=f)
            sen = stack_labels(lab10).astype(np.int16)
            assert len(sen) == num_stacked_frames(n)
            cut.senones = tw.store_array(cid, sen, frame_shift=0.03, temporal_dim=0)
            cuts.append(cut)
    cs = CutSet.from_cuts(cuts)
    if manifest:
        cs.to_file(out / manifest)
    return cs


def make_toy_cmvn(cuts) -> CmvnStats:
    """The CMVN statistics of ``cuts`` (no progress bar)."""
    return accumulate_cmvn(cuts, progress_bar=False)
