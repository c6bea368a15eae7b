"""Decoding oracle score matrices returns the known words and alignment; failures are counted."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from asrkit.decode import DecodeConfig, Graph, decode_set, decode_utterance, write_decode_dir
from asrkit.graph import make_graph_dir
from asrkit.testing.lang import TOY_LEXICON, TOY_SENTENCES, write_toy_lang_dir, write_toy_sentence_grammar
from asrkit.testing.oracle import make_oracle_alignment, make_oracle_scores, make_toy_model


def _system(tmp_path, num_states, context_width):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON, num_states=num_states)
    g = write_toy_sentence_grammar(lang, TOY_SENTENCES, tmp_path / "G.fst")
    model = make_toy_model(lang, context_width)
    make_graph_dir(lang, g, model, tmp_path / "graph")
    return lang, model, Graph.load(tmp_path / "graph")


@pytest.mark.parametrize("num_states,context_width", [(3, 1), (1, 1), (3, 3), (1, 3)])
def test_oracle_decoding(tmp_path, num_states, context_width):
    lang, model, graph = _system(tmp_path, num_states, context_width)
    for k, sent in enumerate(TOY_SENTENCES):
        tids = make_oracle_alignment(model, lang, sent, num_frames=30 + 3 * k, seed=k)
        scores = make_oracle_scores(graph.tid2pdf, tids, graph.num_pdfs, seed=k)
        r = decode_utterance(graph, scores, DecodeConfig(acoustic_scale=1.0), utt=f"u{k}")
        assert r.reached_final and r.words == sent.split()
        assert len(r.tids) == len(tids) == r.num_frames
        assert [graph.tid2pdf[t] for t in r.tids] == [graph.tid2pdf[t] for t in tids]
        assert r.phones == [model.transition_model.transition_id_to_phone(t) for t in tids]


def test_unreached_final_is_counted_not_dropped(tmp_path):
    lang, model, graph = _system(tmp_path, 3, 1)
    good = make_oracle_scores(graph.tid2pdf, make_oracle_alignment(model, lang, "yes no", 30), graph.num_pdfs)
    short = good[:4]  # "no", the shortest sentence, needs 6 frames with three states per phone
    results, summary = decode_set([("good", good), ("short", short)], graph, DecodeConfig(acoustic_scale=1.0))
    assert [r.utt for r in results] == ["good", "short"]
    assert summary.num_not_final == 1 and summary.not_final == ["short"]
    assert results[0].words == ["yes", "no"] and not results[1].reached_final
    assert len(results[1].tids) == 4  # best partial path, as Kaldi
    results, summary = decode_set([("short", short)], graph, DecodeConfig(allow_partial=False))
    assert summary.num_not_final == 1 and results[0].words == [] and summary.num_empty == 1
    write_decode_dir(results, summary, tmp_path / "dec")
    assert (tmp_path / "dec" / "hyp.txt").read_text() == "short\n"
    assert (tmp_path / "dec" / "not_final.txt").read_text() == "short\n"


def test_parallel_matches_serial_and_bad_shape(tmp_path):
    lang, model, graph = _system(tmp_path, 1, 3)
    items = []
    for k in range(8):
        sent = TOY_SENTENCES[k % 3]
        tids = make_oracle_alignment(model, lang, sent, 20 + k, seed=k)
        items.append((f"utt{k}", make_oracle_scores(graph.tid2pdf, tids, graph.num_pdfs, seed=k)))
    r1, s1 = decode_set(items, graph, DecodeConfig(acoustic_scale=1.0), nj=1)
    r2, s2 = decode_set(iter(items), tmp_path / "graph", DecodeConfig(acoustic_scale=1.0), nj=2)
    assert [(r.utt, r.words, r.tids) for r in r1] == [(r.utt, r.words, r.tids) for r in r2]
    assert s1.num_frames == s2.num_frames and s2.nj == 2
    with pytest.raises(ValueError, match="shape"):
        decode_utterance(graph, np.zeros((5, graph.num_pdfs + 1), np.float32))
    r3, s3 = decode_set([("bad", np.zeros((5, graph.num_pdfs + 1), np.float32))], graph)
    assert s3.num_failed == 1 and r3[0].utt == "bad"


def test_decode_cli_sweep(tmp_path):
    import kaldiio

    lang, model, graph = _system(tmp_path, 1, 1)
    mats, refs = {}, []
    for k, sent in enumerate(TOY_SENTENCES * 2):
        tids = make_oracle_alignment(model, lang, sent, 25 + k, seed=k)
        mats[f"utt{k}"] = make_oracle_scores(graph.tid2pdf, tids, graph.num_pdfs, seed=k)
        refs.append(f"utt{k} {sent}\n")
    refs.append("utt_missing yes\n")
    (tmp_path / "text").write_text("".join(refs))
    (tmp_path / "scores").mkdir()
    kaldiio.save_ark(str(tmp_path / "scores" / "scores.ark"), mats, scp=str(tmp_path / "scores" / "scores.scp"))
    priors = np.zeros(graph.num_pdfs, np.float32)
    np.save(tmp_path / "priors.npy", priors)
    out = tmp_path / "decode_dev"
    cmd = [sys.executable, "-m", "asrkit.bin.decode", "--graph", str(tmp_path / "graph"), "--scores",
           str(tmp_path / "scores"), "--ref", str(tmp_path / "text"), "--out", str(out), "--nj", "2",
           "--log-priors", str(tmp_path / "priors.npy")]
    r = subprocess.run(cmd + ["--lm-weights", "1,2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("wer_1", "wer_2", "per_utt_1", "best_wer", "hyp.txt", "lmwt_1/hyp.txt", "ali.txt"):
        assert (out / name).exists(), name
    wer = (out / "wer_1").read_text()
    assert wer.startswith("%WER 7.69 [ 1 / 13, 0 ins, 1 del, 0 sub ]")  # the missing utterance
    assert "1 not present in hyp" in wer
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_utts"] == 6 and summary["num_not_final"] == 0
    r = subprocess.run(cmd[:-2] + ["--lm-weight-from", str(out / "best_wer"), "--out", str(tmp_path / "dt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "%WER 7.69" in r.stdout
    assert (tmp_path / "dt" / "best_wer").read_text().startswith("%WER 7.69")
    # an up-to-date decode dir is kept; --force decodes again
    r = subprocess.run(cmd + ["--lm-weights", "1,2"], capture_output=True, text=True)
    assert r.returncode == 0 and "up to date" in r.stderr and "%WER" not in r.stdout
    r = subprocess.run(cmd + ["--lm-weights", "1,2", "--force"], capture_output=True, text=True)
    assert r.returncode == 0 and "%WER" in r.stdout
