"""Speed-perturbed copies of a labelled set (asrkit.data.perturb, asrkit.bin.perturb_speed): the factors'
checks, lhotse's naming, the copies' manifests, and their features under the frame rule."""
from __future__ import annotations

import math

import pytest

from asrkit.data.perturb import parse_speed_factors, perturbed_set_name, write_perturbed_sets

RATE = 16000


@pytest.mark.parametrize("spec,want", [("0.9 1.1", [0.9, 1.1]), ("0.9,1.1", [0.9, 1.1]), ("1.1 0.90", [1.1, 0.9]),
                                       ("0.9 1.0 1.1", [0.9, 1.1]), ("0.9 0.9", [0.9]), ("", []), (None, []),
                                       ([0.8, "1.2"], [0.8, 1.2]), ("1e0 1.5", [1.5])])
def test_factors_parsed(spec, want):
    assert parse_speed_factors(spec) == want


@pytest.mark.parametrize("bad,why", [("0", "factor 0 must be a number > 0"), ("0.9 -1.1", "factor -1.1 must be"),
                                     ("0.9 fast", "'fast' is not a number"), ("nan", "factor nan must be"),
                                     ("inf", "factor inf must be")])
def test_bad_factor_refused_naming_the_option(bad, why):
    with pytest.raises(ValueError, match=f"^--speed-perturb: {why}"):
        parse_speed_factors(bad)
    with pytest.raises(ValueError, match=f"^--my-opt: {why}"):
        parse_speed_factors(bad, option="--my-opt")


def test_check_mode_of_the_tool(capsys):
    from asrkit.bin import perturb_speed

    assert perturb_speed.main(["--check", "--factors", "0.90 1.0 1.1"]) == 0
    assert capsys.readouterr().out.split() == ["0.9", "1.1"]  # the names the copies get
    assert perturb_speed.main(["--check", "--option-name=--speed-perturb", "--factors", "0.9 -1"]) == 2
    err = capsys.readouterr().err
    assert "--speed-perturb: factor -1 must be a number > 0" in err and "usage:" not in err


@pytest.fixture
def stage1_cuts(tmp_path):
    """Stage 1's manifest of a two-utterance set: recordings (wav) and supervisions with speaker and text."""
    from lhotse import CutSet, Recording, SupervisionSegment
    from lhotse.utils import fastcopy

    from asrkit.testing.corpus import write_toy_audio

    cuts = []
    for i, n in enumerate((16000 + 123, 9999)):
        wav = write_toy_audio(tmp_path / "audio" / f"u{i}.wav", n, RATE, seed=i)
        rec = Recording.from_file(wav, recording_id=f"u{i}")
        sup = SupervisionSegment(id=f"u{i}", recording_id=f"u{i}", start=0.0, duration=rec.duration,
                                 text="one two", speaker=f"spk{i}")
        cuts.append(fastcopy(rec.to_cut(), supervisions=[sup]))
    path = tmp_path / "manifests" / "cuts_train_sup.jsonl.gz"
    path.parent.mkdir()
    CutSet.from_cuts(cuts).to_file(path)
    return path


def test_copies_are_named_as_lhotse_and_kaldi_name_them(stage1_cuts, tmp_path):
    from lhotse import CutSet

    from asrkit.utils.atomic import is_done

    out = write_perturbed_sets(stage1_cuts, "train_sup", [0.9, 1.1], tmp_path / "manifests")
    assert [p.name for p in out] == ["cuts_train_sup_sp0.9.jsonl.gz", "cuts_train_sup_sp1.1.jsonl.gz"]
    assert perturbed_set_name("train_sup", 0.9) == "train_sup_sp0.9"
    orig = {c.id: c for c in CutSet.from_file(stage1_cuts)}
    for f, p in zip((0.9, 1.1), out):
        assert is_done(p)
        copies = list(CutSet.from_file(p))
        assert [c.id for c in copies] == [f"{u}_sp{f}" for u in orig]
        for c in copies:
            o = orig[c.id[: -len(f"_sp{f}")]]
            # the audio resampled: num_samples as lhotse's perturb_speed gives (about n / f)
            assert abs(c.num_samples - o.num_samples / f) <= 1
            assert c.load_audio().shape[-1] == c.num_samples
            s = c.supervisions[0]
            assert s.id == f"{o.supervisions[0].id}_sp{f}" and s.text == "one two"
            assert s.speaker == f"{o.supervisions[0].speaker}_sp{f}"  # a speaker of its own (Kaldi's sp<f>-)


def test_a_copy_done_is_skipped_and_force_redoes_it(stage1_cuts, tmp_path, caplog):
    import logging

    p = write_perturbed_sets(stage1_cuts, "train_sup", [0.9], tmp_path / "manifests")[0]
    before = p.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        write_perturbed_sets(stage1_cuts, "train_sup", [0.9], tmp_path / "manifests")
    assert p.stat().st_mtime_ns == before and "is done, skipped" in caplog.text
    write_perturbed_sets(stage1_cuts, "train_sup", [0.9], tmp_path / "manifests", force=True)
    assert p.stat().st_mtime_ns != before


def test_tool_writes_copies_and_stops_on_changed_input(stage1_cuts, tmp_path, capsys):
    from lhotse import CutSet

    from asrkit.bin import perturb_speed

    args = ["--cuts", str(stage1_cuts), "--set", "train_sup", "--factors", "1.1", "--out-dir", str(tmp_path / "m")]
    assert perturb_speed.main(args) == 0
    assert (tmp_path / "m" / "cuts_train_sup_sp1.1.jsonl.gz").exists()
    cuts = list(CutSet.from_file(stage1_cuts))[:1]  # train_sup made again, other cuts: the copy is stale
    CutSet.from_cuts(cuts).to_file(stage1_cuts)
    capsys.readouterr()
    assert perturb_speed.main(args) == 1
    assert "from other inputs or options" in capsys.readouterr().err
    assert perturb_speed.main(args + ["--force"]) == 0
    assert len(CutSet.from_file(tmp_path / "m" / "cuts_train_sup_sp1.1.jsonl.gz")) == 1


def test_features_of_a_copy_follow_the_frame_rule(stage1_cuts, tmp_path):
    """Stage 2 on a copy: n = num_frames(duration of the copy) frames, T = ceil(n / 3) of 30 ms."""
    from lhotse import CutSet

    from asrkit.features import compute_features, num_frames, num_stacked_frames

    p = write_perturbed_sets(stage1_cuts, "train_sup", [0.9], tmp_path / "manifests")[0]
    for kind in ("fbank", "mfcc"):
        compute_features(p, tmp_path / kind, "train_sup_sp0.9", kind=kind, progress_bar=False)
        for c in CutSet.from_file(tmp_path / kind / "cuts_train_sup_sp0.9.jsonl.gz"):
            n = num_frames(c.duration, RATE)
            assert c.num_frames == n == c.load_features().shape[0]
            assert num_stacked_frames(n) == math.ceil(n / 3)
