"""HCLG on a hand-made lexicon and grammar: the graph's word sequences are exactly the grammar's."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asrkit.fst import kaldifst
from asrkit.graph import EmptyGraphError, make_graph_dir
from asrkit.graph import fstutil
from asrkit.graph.hclg import read_symbol_table
from asrkit.hmm import (load_model, read_topo, save_model, standin_model, tree_from_bytes,
                                     tree_to_bytes)
from asrkit.lang.lm import arpa_to_fst
from asrkit.testing.lang import TOY_LEXICON, TOY_SENTENCES, write_toy_lang_dir, write_toy_sentence_grammar
from asrkit.testing.oracle import make_toy_model


def _words(lang_dir):
    return {i: w for w, i in read_symbol_table(lang_dir / "words.txt").items()}


@pytest.mark.parametrize("num_states", [3, 1])
@pytest.mark.parametrize("context_width", [1, 3])
@pytest.mark.parametrize("wdisambig_loop", [False, True])
def test_paths_are_the_grammar(tmp_path, num_states, context_width, wdisambig_loop):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON, num_states=num_states,
                              wdisambig_loop=wdisambig_loop)
    g = write_toy_sentence_grammar(lang, TOY_SENTENCES, tmp_path / "G.fst")
    model = make_toy_model(lang, context_width)
    info = make_graph_dir(lang, g, model, tmp_path / "graph")
    assert info.states > 0 and info.arcs > 0 and info.context_width == context_width
    hclg = kaldifst.StdVectorFst.read(str(tmp_path / "graph" / "HCLG.fst"))
    id2w = _words(lang)
    seqs = fstutil.enumerate_sequences(fstutil.output_projection(hclg))
    got = sorted(" ".join(id2w[i] for i in labels) for labels, _ in seqs)
    assert got == sorted(TOY_SENTENCES)
    # input labels are transition ids only (disambiguation ids removed)
    tids = fstutil.input_labels(hclg) - {0}
    assert tids and max(tids) <= model.transition_model.num_transition_ids
    for name in ("HCLG.fst", "words.txt", "phones.txt", "info.json", "transitions.npz"):
        assert (tmp_path / "graph" / name).exists()
    meta = json.loads((tmp_path / "graph" / "info.json").read_text())
    assert meta["states"] == info.states and meta["arcs"] == info.arcs and "build_seconds" in meta
    assert (tmp_path / ".graph.done").exists()


# </s> after <s> (the empty sentence) is unlikely enough that "yes no" wins even with optional silence
# costing -log(0.5) at every word end (the lang dir is Kaldi's: silence between words is a real SIL arc)
ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.5 </s>
-99 <s> -0.3
-0.6 yes -0.2
-0.6 no -0.2
-0.9 nope -0.2

\\2-grams:
-0.2 <s> yes
-0.3 yes no
-0.2 no </s>

\\end\\
"""


def test_arpa_lm_with_backoff(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON, num_states=1)
    (tmp_path / "lm.arpa").write_text(ARPA)
    g = tmp_path / "G.fst"
    arpa_to_fst(tmp_path / "lm.arpa", lang / "words.txt", g)
    info = make_graph_dir(lang, g, make_toy_model(lang, 3), tmp_path / "graph")
    hclg = kaldifst.StdVectorFst.read(str(tmp_path / "graph" / "HCLG.fst"))
    best = kaldifst.shortest_path(fstutil.output_projection(hclg))
    ok, labels, _, _ = kaldifst.get_linear_symbol_sequence(best)
    id2w = _words(lang)
    assert ok and [id2w[i] for i in labels] == ["yes", "no"]
    assert info.stages["LG"]["arcs"] > 0


def test_empty_graph_is_a_clear_error(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON)
    wid = read_symbol_table(lang / "words.txt")
    g = kaldifst.compile(f"0 1 {wid['<s>']} {wid['<s>']}\n1\n")  # a word L cannot spell
    g.write(str(tmp_path / "G.fst"))
    with pytest.raises(EmptyGraphError, match="L o G is empty"):
        make_graph_dir(lang, tmp_path / "G.fst", standin_model(lang / "topo"), tmp_path / "graph")
    assert not (tmp_path / "graph").exists()


def test_phone_missing_from_model_is_a_clear_error(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON)
    other = write_toy_lang_dir(tmp_path / "other", {"a": ["a"]})
    g = write_toy_sentence_grammar(lang, ["yes"], tmp_path / "G.fst")
    with pytest.raises(ValueError, match="not in the model"):
        make_graph_dir(lang, g, standin_model(other / "topo"), tmp_path / "graph")


def test_model_and_tree_round_trip(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON)
    m = make_toy_model(lang, 3)
    save_model(tmp_path / "final.mdl", m.transition_model, m.tree, note="x")
    m2 = load_model(tmp_path / "final.mdl")
    assert m2.tree.context_width == 3 and m2.tree.central_position == 1
    assert m2.transition_model.num_transition_ids == m.transition_model.num_transition_ids
    assert m2.extra["note"] == "x"
    assert tree_to_bytes(tree_from_bytes(tree_to_bytes(m.tree))) == tree_to_bytes(m.tree)
    assert read_topo(lang / "topo").phones == m.transition_model.phones


def test_make_graph_cli(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON)
    g = write_toy_sentence_grammar(lang, TOY_SENTENCES, tmp_path / "G.fst")
    m = make_toy_model(lang, 1)
    save_model(tmp_path / "final.mdl", m.transition_model, m.tree)
    (tmp_path / "tree").write_bytes(tree_to_bytes(m.tree))
    for i, extra in enumerate((["--model", str(tmp_path / "final.mdl")], ["--tree", str(tmp_path / "tree")], [])):
        out = tmp_path / f"graph{i}"
        r = subprocess.run([sys.executable, "-m", "asrkit.bin.make_graph", "--lang", str(lang), "--lm", str(g),
                            "--out", str(out), *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "states" in r.stdout and (out / "HCLG.fst").exists()
    # an up-to-date graph is kept (as mkgraph.sh); --force rebuilds it
    cmd = [sys.executable, "-m", "asrkit.bin.make_graph", "--lang", str(lang), "--lm", str(g), "--out",
           str(tmp_path / "graph0"), "--model", str(tmp_path / "final.mdl")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "up to date" in r.stderr and "states" not in r.stdout
    r = subprocess.run(cmd + ["--force"], capture_output=True, text=True)
    assert r.returncode == 0 and "states" in r.stdout
    bad = kaldifst.compile("0 1 9999 9999\n1\n")
    bad.write(str(tmp_path / "bad.fst"))
    r = subprocess.run([sys.executable, "-m", "asrkit.bin.make_graph", "--lang", str(lang), "--lm",
                        str(tmp_path / "bad.fst"), "--out", str(tmp_path / "gbad")], capture_output=True, text=True)
    assert r.returncode == 1 and "words.txt" in r.stderr
