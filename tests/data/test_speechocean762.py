"""The real speechocean762 corpus (skipped where the shared copy is absent): counts and the split."""
from __future__ import annotations

from lhotse import CutSet

from asrkit.data import speechocean762 as so
from asrkit.data.kaldi_dir import read_kaldi_dir
from asrkit.data.split import check_speaker_disjoint


def test_layout(speechocean_dir):
    kd = read_kaldi_dir(so.data_dir(speechocean_dir))
    assert len(kd.wav_scp) == so.NUM_UTTERANCES
    assert len(set(kd.utt2spk.entries.values())) == so.NUM_SPEAKERS
    assert so.lexicon_path(speechocean_dir).stat().st_size > 0


def test_prepare_speechocean762(speechocean_dir, tmp_path):
    out = tmp_path / "data" / "manifests"
    so.prepare_speechocean762(speechocean_dir, out, kaldi_view_root=tmp_path / "data")
    cuts = {n: CutSet.from_file(out / f"cuts_{n}.jsonl.gz") for n in so.DEFAULT_PROPORTIONS}
    speakers = {n: {c.supervisions[0].speaker for c in cs} for n, cs in cuts.items()}
    check_speaker_disjoint(speakers)
    assert [len(speakers[n]) for n in so.DEFAULT_PROPORTIONS] == [50, 44, 12, 19]
    assert sum(len(cs) for cs in cuts.values()) == so.NUM_UTTERANCES
    hours = sum(c.duration for cs in cuts.values() for c in cs) / 3600
    assert 2.8 < hours < 3.0
    assert all(c.supervisions[0].text is None for c in cuts["train_unsup"])
    assert all(c.supervisions[0].text for n in ("train_sup", "dev", "test") for c in cuts[n])
    oracle = CutSet.from_file(out / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert len(oracle) == len(cuts["train_unsup"]) and all(c.supervisions[0].text for c in oracle)
    c = cuts["test"][0]
    assert c.sampling_rate == 16000 and c.load_audio().shape[1] == c.num_samples
    assert (tmp_path / "data" / "train_sup" / "text").exists()
    assert not (tmp_path / "data" / "train_unsup" / "text").exists()
    for n in so.DEFAULT_PROPORTIONS:
        assert "skipped 0" in (out / f"validation_{n}.txt").read_text()


def test_roundtrip_speechocean762(speechocean_dir, tmp_path):
    from asrkit.data.manifests import export_kaldi_dir, load_kaldi_data_dir

    src = so.data_dir(speechocean_dir)
    p = load_kaldi_data_dir(src, speechocean_dir, progress=False)
    export_kaldi_dir(p.cuts, tmp_path / "back", audio_root=speechocean_dir)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        # the corpus separates some keys with a tab; the writer uses one space, like Kaldi's tools
        want = sorted(line.replace("\t", " ", 1) for line in (src / name).read_text().splitlines())
        assert (tmp_path / "back" / name).read_text().splitlines() == want, name
