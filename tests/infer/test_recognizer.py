"""Recognition with an exported model: the streaming final equals the offline decode exactly."""
import numpy as np
import pytest

from asrkit.decode.decoder import decode_utterance
from asrkit.infer.model_dir import load_model_dir
from asrkit.infer.recognizer import Recognizer
from asrkit.nnet.infer import log_posteriors


def _speechlike(seconds, seed):
    """Noise whose loudness and colour change every 0.2 s: inputs that move a random network around."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    x = rng.standard_normal(n).astype(np.float32)
    env = np.repeat(rng.uniform(0.01, 1.0, n // 3200 + 1), 3200)[:n]
    return (np.convolve(x, rng.standard_normal(8), mode="same") * env * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def student(toy_models):
    return Recognizer(load_model_dir(toy_models["student"]))


def test_scores_are_the_recipes_chunked_forward(student):
    feats = student.features(_speechlike(2.0, 0))
    lp = log_posteriors(student.network, feats, streaming=True, chunk=32)
    assert np.array_equal(student.scores(feats), (lp - student.log_priors[None, :]).astype(np.float32))


@pytest.mark.parametrize("chunk", [32, 5])
def test_streaming_final_equals_offline(toy_models, chunk):
    rec = Recognizer(load_model_dir(toy_models["student"]), chunk=chunk)
    changed = 0
    for seed in range(4):
        x = _speechlike(1.0 + seed * 0.77, seed)
        offline = rec.recognize(x, "u")
        session = rec.stream("u")
        for a in range(0, len(x), 1234):  # audio chunks unrelated to the network's
            changed += session.accept(x[a:a + 1234]).changed
        final = session.finish()
        assert offline.words, "the toy network should say something"
        assert final.words == offline.words and final.tids == offline.tids
        assert final.reached_final == offline.reached_final
        assert final.graph_cost == offline.graph_cost and final.acoustic_cost == offline.acoustic_cost
    assert changed > 0, "partial hypotheses never changed"


def test_offline_decode_is_decode_utterance_of_the_scores(student):
    x = _speechlike(1.5, 9)
    feats = student.features(x)
    want = decode_utterance(student.graph, student.scores(feats), student.config, "u")
    got = student.recognize(x, "u")
    assert got.words == want.words and got.tids == want.tids


def test_lm_weight_override(toy_models):
    rec = Recognizer(load_model_dir(toy_models["student"]), lm_weight=7.0)
    assert rec.config.acoustic_scale == pytest.approx(1 / 7.0)
    with pytest.raises(ValueError, match="positive"):
        Recognizer(load_model_dir(toy_models["student"]), lm_weight=0.0)


def test_teacher_decodes_offline_but_does_not_stream(toy_models):
    rec = Recognizer(load_model_dir(toy_models["teacher"]))
    assert rec.recognize(_speechlike(1.0, 1)).num_frames == 34
    with pytest.raises(ValueError, match="bidirectional"):
        rec.stream()


def test_a_network_normalised_per_utterance_is_exported_and_fed_so(toy_recipe, tmp_path):
    """A student trained with cmvn_mode utterance: the export records it in frontend.cmvn, offline
    recognition normalises the signal with its own statistics, streaming is refused (it needs them all)."""
    import shutil

    import torch

    from asrkit.features.cmvn import utterance_cmvn
    from asrkit.features.stack import stack_frames
    from asrkit.infer.frontend import offline_fbank
    from asrkit.infer.model_dir import CMVN_FRONTEND, export_model

    recipe = tmp_path / "recipe"
    shutil.copytree(toy_recipe, recipe)
    ck_path = recipe / "exp" / "student" / "best.pt"
    ck = torch.load(ck_path, weights_only=False)
    ck["train_config"] = {"cmvn_mode": "utterance"}
    torch.save(ck, ck_path)
    md = load_model_dir(export_model(recipe / "exp", "student", tmp_path / "model"))
    assert md.norm == "utterance" and md.manifest["frontend"]["cmvn"] == CMVN_FRONTEND["utterance"]
    rec = Recognizer(md)
    x = _speechlike(1.3, 4)
    fb = offline_fbank(x)
    st = utterance_cmvn(fb)
    want = stack_frames((fb - st.mean.astype(np.float32)) * (1.0 / st.std).astype(np.float32))
    np.testing.assert_array_equal(rec.features(x), want)
    assert not np.allclose(want, stack_frames((fb - md.cmvn().mean) / md.cmvn().std), atol=1e-2)  # not global
    assert rec.recognize(x, "u").words is not None
    with pytest.raises(ValueError, match="streaming needs global CMVN"):
        rec.stream("u")
