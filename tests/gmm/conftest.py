"""A tiny espeak-ng digit corpus (word starts known exactly), its lang dir and a monophone system,
shared by the GMM tests (session scope: synthesised and trained once)."""
from __future__ import annotations

import pytest

from asrkit.lang.g2p import have_espeak
from asrkit.testing.digits import VOICES, make_digit_corpus
from asrkit.testing.lang import write_toy_lang_dir

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    from asrkit.gmm import Corpus, make_features

    d = tmp_path_factory.mktemp("gmm_toy")
    c = make_digit_corpus(32, voices=VOICES[:4], seed=0)
    lang = write_toy_lang_dir(d / "lang", c.lexicon)
    corpus = Corpus(make_features(c.mfcc(), c.spk), c.text, c.spk)
    return {"dir": d, "toy": c, "lang": lang, "corpus": corpus}


@pytest.fixture(scope="session")
def mono_system(toy_data):
    from asrkit.gmm import MonoConfig, train_mono

    out = toy_data["dir"] / "mono"
    model = train_mono(toy_data["corpus"], toy_data["lang"], out, MonoConfig(num_iters=12, tot_gauss=200, nj=2))
    return model, out
