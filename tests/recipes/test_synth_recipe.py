"""End to end: every stage of egs/synth/s5 (0-13 and the report, 16) on a tiny synthetic corpus with
the GMM and network sizes of ``--tiny true``, then a resumed re-run. The networks trained 2 epochs on
30 s of speech decode badly; what is checked here is that each stage writes consistent outputs. A
separate test overfits a small network on train_sup and decodes it through the recipe's graph."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# every stage of the recipe runs in the first test's fixture: about 7 min on 2 free cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

SETS = ["train_sup", "train_unsup", "dev", "test_clean", "test_noisy"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools) -> Path:
    """A copy of the recipe in a temporary folder (outputs stay out of the checkout)."""
    t = recipe_tools
    work = t.copy_recipe(t.repo / "egs" / "synth" / "s5", tmp_path_factory.mktemp("egs") / "synth" / "s5")
    t.run(work, "--tiny", "true", "--nj", "2", "--stop-stage", "16", "--sweep", "true", "--dist", "true", timeout=2000)
    return work


def test_stage0_corpus(recipe: Path):
    for s in SETS:
        assert (recipe / "corpus" / "data" / s / "wav.scp").stat().st_size > 0
    assert not (recipe / "corpus" / "data" / "train_unsup" / "text").exists()
    assert (recipe / "corpus" / "oracle" / "train_unsup" / "text").stat().st_size > 0


def test_stage1_manifests(recipe: Path, recipe_tools):
    man = recipe / "data" / "manifests"
    for s in SETS:
        cuts = recipe_tools.read_jsonl_gz(man / f"cuts_{s}.jsonl.gz")
        assert cuts, s
        texts = [sup.get("text") for c in cuts for sup in c["supervisions"]]
        if s == "train_unsup":
            assert all(not t for t in texts), "unlabelled cuts must carry no transcript"
        else:
            assert all(texts), s
    oracle = recipe_tools.read_jsonl_gz(man / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert all(sup["text"] for c in oracle for sup in c["supervisions"])
    speakers = {s: {sup["speaker"] for c in recipe_tools.read_jsonl_gz(man / f"cuts_{s}.jsonl.gz")
                    for sup in c["supervisions"]}
                for s in SETS}
    for i, a in enumerate(SETS):
        for b in SETS[i + 1:]:
            assert not speakers[a] & speakers[b], (a, b)


def test_stage2_features(recipe: Path, monkeypatch):
    from lhotse import CutSet

    monkeypatch.chdir(recipe)  # feature paths in manifests are relative to the recipe, as in icefall

    from asrkit.features import FeatureReader, num_stacked_frames

    reader = FeatureReader(recipe / "data" / "cmvn.npz")
    for s in SETS:
        cuts = CutSet.from_file(recipe / "data" / "fbank" / f"cuts_{s}.jsonl.gz")
        cut = next(iter(cuts))
        x = reader(cut)
        assert x.shape == (num_stacked_frames(cut.num_frames), 192)
    mfcc = CutSet.from_file(recipe / "data" / "mfcc" / "cuts_train_sup.jsonl.gz")
    assert next(iter(mfcc)).load_features().shape[1] == 13


def test_stage3_lang_and_lm(recipe: Path):
    data = recipe / "data"
    for lang in ("lang", "lang_senone"):
        for f in ("phones.txt", "words.txt", "L.fst", "L_disambig.fst", "topo", "oov.txt"):
            assert (data / lang / f).stat().st_size > 0, (lang, f)
    assert (data / "lang" / "phones.txt").read_bytes() == (data / "lang_senone" / "phones.txt").read_bytes()
    assert (data / "lm" / "G.fst").stat().st_size > 0


EVAL_SETS = ["dev", "test_clean", "test_noisy"]


def test_stages4_5_gmm_systems(recipe: Path, recipe_tools):
    for sys in ("mono", "tri"):
        d = recipe / "exp" / sys
        assert (d / "final.mdl").stat().st_size > 0
        history = json.loads((d / "history.json").read_text())
        assert history[-1]["loglike_per_frame"] > history[0]["loglike_per_frame"], sys
        for s in EVAL_SETS:
            recipe_tools.checked_wer(d / f"decode_{s}", recipe / "data" / s / "text")
        b = json.loads((d / "ali_eval" / "boundaries.json").read_text())
        assert b["compared"] > 100 and 0.0 < b["frac_20ms"] <= b["frac_50ms"] <= 1.0, (sys, b)
    # the test sets are decoded at the LM weight that was best on dev
    dev_weight = (recipe / "exp" / "tri" / "decode_dev" / "best_wer").read_text().split()[-1].rsplit("_", 1)[1]
    assert (recipe / "exp" / "tri" / "decode_test_clean" / f"wer_{dev_weight}").exists()


def test_stage6_senone_targets(recipe: Path, monkeypatch):
    import numpy as np
    from lhotse import CutSet

    from asrkit.features import num_stacked_frames

    monkeypatch.chdir(recipe)
    senone = recipe / "exp" / "senone"
    counts = np.load(senone / "senone_counts.npy")
    assert counts.sum() > 0
    kept = 0
    for name in ("train_sup", "dev"):
        for cut in CutSet.from_file(senone / f"cuts_{name}.jsonl.gz"):
            targets = cut.custom["senones"].load()
            assert targets.dtype.kind == "i" and len(targets) == num_stacked_frames(cut.num_frames), cut.id
            assert targets.min() >= 0 and targets.max() < len(counts), cut.id
            kept += 1
    assert kept > 0
    assert (senone / "graph" / "HCLG.fst").stat().st_size > 0


def test_stages7_13_networks_decoded(recipe: Path, recipe_tools):
    for sys in ("teacher", "student_sup", "student_ssl_inter", "student_ssl_seg", "student_oracle"):
        d = recipe / "exp" / sys
        assert (d / "best.pt").stat().st_size > 0, sys
        for s in EVAL_SETS:
            recipe_tools.checked_wer(d / f"decode_{s}", recipe / "data" / s / "text")


def test_stage10_pseudo_labels_cover_train_unsup(recipe: Path):
    from lhotse import CutSet

    from asrkit.features import num_stacked_frames

    index = json.loads((recipe / "exp" / "pseudo" / "index.json").read_text())
    cuts = CutSet.from_file(recipe / "data" / "fbank" / "cuts_train_unsup.jsonl.gz")
    assert index["num_cuts"] == len(cuts)
    assert index["totals"]["frames"] == sum(num_stacked_frames(c.num_frames) for c in cuts)
    assert index["k"] == 20


def test_stage16_report_matches_decode_dirs(recipe: Path, recipe_tools):
    """The report's table: test sets first, dev last (the tuning set), then each network's updates; every
    student (stages 9, 11-13) made exactly the supervised student's updates."""
    report = (recipe / "RESULTS.md").read_text()
    headline = ["test_clean", "test_noisy", "dev"]
    assert "| system | test_clean | test_noisy | dev (tuning) | updates |" in report
    updates = {}
    for sys in ("mono", "tri", "teacher", "student_sup", "student_ssl_inter", "student_ssl_seg", "student_oracle"):
        row = next(line for line in report.splitlines() if f"(`{sys}`)" in line)
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        want = [f"{recipe_tools.best_wer(recipe / 'exp' / sys / f'decode_{s}'):.2f}" for s in headline]
        assert cells[:-1] == want, (sys, cells, want)
        updates[sys] = cells[-1]
    assert updates["mono"] == updates["tri"] == ""
    steps = json.loads((recipe / "exp" / "student_sup" / "history.jsonl").read_text().splitlines()[-1])["step"]
    assert {updates[s] for s in ("student_sup", "student_ssl_inter", "student_ssl_seg", "student_oracle")} == {
        str(steps)}, updates
    assert (recipe / "RESULTS.png").stat().st_size > 0


def test_stage14_sweep_subsets_are_nested(recipe: Path, recipe_tools):
    from lhotse import CutSet

    ids = {r: set(CutSet.from_file(recipe / "exp" / "sweep" / f"x{r}" / "cuts_unsup.jsonl.gz").ids)
           for r in ("0.25", "0.5")}
    assert ids["0.25"] and ids["0.25"] < ids["0.5"]
    for r in ("0.25", "0.5"):
        for s in EVAL_SETS:
            recipe_tools.checked_wer(recipe / "exp" / "sweep" / f"x{r}" / f"decode_{s}", recipe / "data" / s / "text")
    report = (recipe / "RESULTS.md").read_text()
    assert "`sweep/x0.25`" in report and "`sweep/x0.5`" in report
    assert (recipe / "RESULTS_sweep.png").stat().st_size > 0


def test_stage15_sync_modes_trained_under_torchrun(recipe: Path, recipe_tools):
    comm = {}
    for mode in ("ddp", "gtc", "bmuf"):
        d = recipe / "exp" / f"dist_{mode}"
        assert (d / "best.pt").stat().st_size > 0, mode
        comm[mode] = json.loads((d / "comm.json").read_text())
        recipe_tools.checked_wer(d / "decode_dev", recipe / "data" / "dev" / "text")
    report = (recipe / "RESULTS.md").read_text()
    section = report.split("## Distributed training (stage 15)")[1]
    for mode in ("ddp", "gtc", "bmuf"):
        assert f"`dist_{mode}`" in section, mode


def test_overfitted_network_decodes_its_training_data(recipe: Path, tmp_path, recipe_tools):
    """The hybrid decoding path end to end (posteriors, priors, senone HCLG, scoring): a small BLSTM
    trained to memorise the tiny train_sup must decode it almost perfectly."""
    env = recipe_tools.env
    out = tmp_path / "overfit"
    senone = recipe / "exp" / "senone"
    steps = [
        [sys.executable, "-m", "asrkit.bin.train_nnet", "--config", "conf/teacher.yaml", "--dropout", "0",
         "--train-cuts", f"{senone}/cuts_train_sup.jsonl.gz", "--dev-cuts", f"{senone}/cuts_train_sup.jsonl.gz",
         "--cmvn", "data/cmvn.npz", "--num-senones", str(len(__import__("numpy").load(senone / "senone_counts.npy"))),
         "--num-epochs", "30", "--warmup-steps", "10", "--out-dir", str(out), "--progress", "false"],
        [sys.executable, "-m", "asrkit.bin.nnet_forward", "--model", f"{out}/best.pt", "--cuts",
         "data/fbank/cuts_train_sup.jsonl.gz", "--cmvn", "data/cmvn.npz", "--priors", f"{senone}/senone_counts.npy",
         "--out", f"{out}/decode/scores"],
        [sys.executable, "-m", "asrkit.bin.decode", "--graph", f"{senone}/graph", "--scores", f"{out}/decode/scores",
         "--ref", "data/train_sup/text", "--lm-weights", "1:5", "--out", f"{out}/decode"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}"
    wer = recipe_tools.best_wer(out / "decode")
    assert wer < 20.0, f"an overfitted network decoded its own training data at {wer}% WER"


def test_rerun_skips_finished_stages(recipe: Path, recipe_tools):
    before = {p: p.stat().st_mtime_ns for p in list((recipe / "data").rglob("*.jsonl.gz"))
              + list((recipe / "exp").rglob("*.pt")) + list((recipe / "exp").rglob("best_wer"))}
    recipe_tools.run(recipe, "--tiny", "true", "--nj", "2", "--stage", "1", "--stop-stage", "16", "--sweep", "true",
                     "--dist", "true", timeout=2000)
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = sorted(str(p.relative_to(recipe)) for p in before if before[p] != after[p])
    assert not changed, f"a re-run rewrote finished outputs: {changed[:10]}"


# ---- using what the recipe trained (asrkit.infer): export, transcribe, stream, decode any data set

def _abs_wav_scp(recipe: Path, set_name: str, out: Path) -> Path:
    """The set's wav.scp with the recipe-relative paths made absolute (read from another directory)."""
    lines = []
    for line in (recipe / "data" / set_name / "wav.scp").read_text().splitlines():
        utt, wav = line.split(maxsplit=1)
        lines.append(f"{utt} {wav if Path(wav).is_absolute() else recipe / wav}\n")
    out.write_text("".join(lines))
    return out


def test_exported_model_transcribes_as_the_recipe_decodes(recipe: Path, tmp_path, recipe_tools, monkeypatch):
    """Export a student, transcribe test_clean's audio in a fresh process from another directory: the
    recipe's hypotheses, and (in this process) the recipe's very scores, bit for bit."""
    import kaldiio
    import numpy as np

    from asrkit.infer.audio import load_audio
    from asrkit.infer.model_dir import export_model, load_model_dir
    from asrkit.infer.recognizer import Recognizer

    system = "student_ssl_inter"
    model = export_model(recipe / "exp", system, tmp_path / "model")
    scp = _abs_wav_scp(recipe, "test_clean", tmp_path / "wav.scp")
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "asrkit.bin.transcribe", "--model", str(model), "--wav-scp", str(scp),
                           "--stored-features"], cwd=work, capture_output=True, text=True, timeout=600,
                          env=recipe_tools.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "real-time factor" in proc.stderr
    decoded = recipe / "exp" / system / "decode_test_clean"
    want = sorted((decoded / "hyp.txt").read_text().splitlines())
    assert sorted(proc.stdout.splitlines()) == want

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the recipe's nnet_forward (--num-threads 1): another count rounds differently
    rec = Recognizer(load_model_dir(model))
    monkeypatch.chdir(recipe)  # the scp names the ark relative to the recipe
    recipe_scores = dict(kaldiio.load_scp(str(decoded / "scores" / "scores.scp")))
    wavs = dict(line.split(maxsplit=1) for line in scp.read_text().splitlines())
    for utt, wav in list(wavs.items())[:4]:
        samples = load_audio(wav).samples
        assert np.array_equal(rec.scores(rec.features(samples, stored=True)), recipe_scores[utt]), utt
        # streaming, chunk by chunk from the audio as it arrives: the final is the offline decode
        offline = rec.recognize(samples, utt)
        session = rec.stream(utt)
        for a in range(0, len(samples), 1600):
            session.accept(samples[a:a + 1600])
        final = session.finish()
        assert final.words == offline.words and final.tids == offline.tids, utt
    torch.set_num_threads(threads)


def test_decode_data_reproduces_the_recipes_decoding(recipe: Path, recipe_tools, monkeypatch):
    """utils/decode_data.sh (2 jobs) on test_clean with the streaming student, and the library with the
    teacher and the triphone GMM: the recipe's hypotheses and WER files exactly."""
    system = "student_ssl_inter"
    out = recipe / "exp" / system / "decode_test_clean_again"
    proc = subprocess.run(["utils/decode_data.sh", "--nj", "2", "--system", system, "data/test_clean", str(out)],
                          cwd=recipe, capture_output=True, text=True, timeout=900, env=recipe_tools.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = recipe / "exp" / system / "decode_test_clean"
    weight = (theirs / "best_wer").read_text().split()[-1].rsplit("_", 1)[1]
    assert (out / f"wer_{weight}").read_text() == (theirs / f"wer_{weight}").read_text()
    assert sorted((out / "hyp.txt").read_text().splitlines()) == sorted((theirs / "hyp.txt").read_text().splitlines())
    assert (out / "log" / "decode.2.log").exists()

    from asrkit.infer.decode_data import decode_data
    from asrkit.infer.model_dir import recipe_model
    from asrkit.infer.systems import GmmSystem

    monkeypatch.chdir(recipe)  # wav.scp paths are relative to the recipe
    for name, system in (("teacher", recipe_model(recipe / "exp", "teacher")),
                         ("tri", GmmSystem.from_recipe(recipe / "exp", "tri"))):
        decode_data(system, "data/test_clean", recipe / "exp" / name / "decode_test_clean_again")
        theirs = recipe / "exp" / name / "decode_test_clean"
        weight = (theirs / "best_wer").read_text().split()[-1].rsplit("_", 1)[1]
        again = recipe / "exp" / name / "decode_test_clean_again"
        assert (again / f"wer_{weight}").read_text() == (theirs / f"wer_{weight}").read_text(), name


def test_exported_gmm_transcribes_as_decode_gmm_with_utterance_cmn(recipe: Path, tmp_path, recipe_tools,
                                                                     monkeypatch):
    """An exported triphone GMM (a file is its own speaker: mean per utterance) transcribes test_clean in a
    fresh process as the recipe's own decode_gmm does with --cmn utt, with a CTM of the words."""
    import json

    from asrkit.bin import decode_gmm
    from asrkit.infer.model_dir import export_model

    model = export_model(recipe / "exp", "tri", tmp_path / "model")
    scp = _abs_wav_scp(recipe, "test_clean", tmp_path / "wav.scp")
    proc = subprocess.run([sys.executable, "-m", "asrkit.bin.transcribe", "--model", str(model), "--wav-scp", str(scp),
                           "--stored-features", "--ctm", str(tmp_path / "out.ctm")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=recipe_tools.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    opts = json.loads((model / "model.json").read_text())["decode"]
    monkeypatch.chdir(recipe)
    assert decode_gmm.main(["--model", "exp/tri/final.mdl", "--graph", "exp/tri/graph", "--cuts",
                            "data/mfcc/cuts_test_clean.jsonl.gz", "--cmn", "utt", "--lm-weight-from",
                            "exp/tri/decode_dev/best_wer", "--beam", str(opts["beam"]), "--max-active",
                            str(opts["max_active"]), "--out", str(tmp_path / "decode")]) == 0
    want = sorted((tmp_path / "decode" / "hyp.txt").read_text().splitlines())
    assert sorted(proc.stdout.splitlines()) == want
    words = [w for line in want for w in line.split()[1:]]
    ctm = (tmp_path / "out.ctm").read_text().split("\n")
    assert sorted(c.split()[4] for c in ctm if c) == sorted(words)

    # decode_data with the exported GMM: the recipe's decoding of test_clean (speaker CMN), as in place
    from asrkit.infer.decode_data import decode_data
    from asrkit.infer.model_dir import load_model_dir

    decode_data(load_model_dir(model), "data/test_clean", tmp_path / "again")
    theirs = recipe / "exp" / "tri" / "decode_test_clean"
    weight = (theirs / "best_wer").read_text().split()[-1].rsplit("_", 1)[1]
    assert (tmp_path / "again" / f"wer_{weight}").read_text() == (theirs / f"wer_{weight}").read_text()
