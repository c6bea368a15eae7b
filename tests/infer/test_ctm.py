"""Word timings from a path's phones and the lexicon: small exact cases."""
import numpy as np

from asrkit.infer.ctm import align_words, ctm_lines, phone_segments

PRONS = {"YES": [("y", "eh", "s")], "NO": [("n", "ow")], "NOPE": [("n", "ow", "p")], "A": [("ax",), ("ey",)]}


def test_phone_segments_start_at_non_self_loops():
    # tids: 1 = a (forward), 2 = a (self-loop), 3 = b (forward), 4 = b (self-loop)
    tid2phone = np.array([0, 1, 1, 2, 2])
    starts = np.array([False, True, False, True, False])
    segs = phone_segments([1, 2, 2, 3, 1, 2], tid2phone, starts, {1: "a", 2: "b"})
    assert segs == [("a", 0, 3), ("b", 3, 4), ("a", 4, 6)]
    # the same phone twice in a row: two segments
    assert phone_segments([1, 1], tid2phone, starts, {1: "a", 2: "b"}) == [("a", 0, 1), ("a", 1, 2)]


def test_phone_starts_of_a_three_state_model(tmp_path):
    """Three-state phones start once (state 0's forward transition), not at each state."""
    from asrkit.testing.lang import TOY_LEXICON, write_toy_lang_dir
    from asrkit.testing.oracle import make_toy_model
    from asrkit.infer.ctm import phone_starts

    tm = make_toy_model(write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON, num_states=3)).transition_model
    starts = phone_starts(tm)
    for phone in tm.phones:
        n = sum(1 for t in range(1, tm.num_transition_ids + 1) if starts[t] and tm.transition_id_to_phone(t) == phone)
        assert n == 1, phone


def test_words_with_optional_silence_and_shared_prefixes():
    segs = [("SIL", 0, 2), ("n", 2, 3), ("ow", 3, 5), ("p", 5, 6), ("SIL", 6, 8), ("y", 8, 9), ("eh", 9, 10),
            ("s", 10, 12), ("ey", 12, 13), ("SIL", 13, 15)]
    assert align_words(["NOPE", "YES", "A"], segs, PRONS) == [("NOPE", 2, 6), ("YES", 8, 12), ("A", 12, 13)]
    assert align_words(["NO", "YES", "A"], segs, PRONS) is None  # "p" is left over
    assert align_words([], [("SIL", 0, 3)], PRONS) == []


def test_ctm_lines_in_seconds():
    assert ctm_lines("u", [("YES", 8, 12)]) == ["u 1 0.24 0.12 YES"]
