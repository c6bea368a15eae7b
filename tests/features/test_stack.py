import numpy as np
import pytest
import torch

from asrkit.features import (
    label_frame_indices,
    num_frames,
    num_frames_from_samples,
    num_stacked_frames,
    stack_frames,
    stack_labels,
)


@pytest.mark.parametrize(
    "duration,expected",
    [(0.0, 0), (0.0049, 0), (0.005, 1), (0.01, 1), (0.0149, 1), (0.015, 2), (0.02, 2), (0.025, 3),
     (1.0, 100), (1.0049, 100), (1.005, 101), (2.3456, 235)],
)
def test_num_frames_frame_rule(duration, expected):
    assert num_frames(duration) == expected
    assert num_frames_from_samples(round(duration * 16000)) == expected


def test_num_frames_matches_lhotse():
    from lhotse.utils import compute_num_frames

    for d in np.linspace(0.0, 3.0, 601):
        assert num_frames(d) == compute_num_frames(d, 0.01, 16000)


@pytest.mark.parametrize("n,T", [(0, 0), (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2), (7, 3), (100, 34)])
def test_num_stacked_frames(n, T):
    assert num_stacked_frames(n) == T


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 10, 11])
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_stack_frames_concatenates_and_pads(n, lib):
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    y = stack_frames(torch.from_numpy(x) if lib == "torch" else x)
    if lib == "torch":
        assert isinstance(y, torch.Tensor)
        y = y.numpy()
    T = num_stacked_frames(n)
    assert y.shape == (T, 12)
    for t in range(T):
        want = np.concatenate([x[min(3 * t + k, n - 1)] for k in range(3)])
        np.testing.assert_array_equal(y[t], want)
    # the padding repeats the last 10 ms frame
    if n % 3:
        last = y[-1].reshape(3, 4)
        for k in range(n % 3, 3):
            np.testing.assert_array_equal(last[k], x[-1])


def test_stack_frames_empty_and_bad_shape():
    assert stack_frames(np.zeros((0, 64), np.float32)).shape == (0, 192)
    with pytest.raises(ValueError):
        stack_frames(np.zeros(5))


@pytest.mark.parametrize(
    "labels,expected",
    [
        ([7], [7]),
        ([1, 2], [2]),
        ([1, 2, 3], [2]),
        ([1, 2, 3, 4], [2, 4]),
        ([1, 2, 3, 4, 5], [2, 5]),
        ([1, 2, 3, 4, 5, 6], [2, 5]),
        ([1, 2, 3, 4, 5, 6, 7], [2, 5, 7]),
        ([0, 0, 0, 9, 9, 9, 5, 5, 5, 5], [0, 9, 5, 5]),
        ([], []),
    ],
)
def test_stack_labels_middle_frame(labels, expected):
    got = stack_labels(np.array(labels, dtype=np.int64))
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.int64))
    got_t = stack_labels(torch.tensor(labels, dtype=torch.long))
    assert got_t.tolist() == expected


def test_label_rule_formula_and_three_frame_phone_survives():
    for n in range(1, 40):
        idx = label_frame_indices(n)
        np.testing.assert_array_equal(idx, [min(3 * t + 1, n - 1) for t in range(num_stacked_frames(n))])
    # any run of >= 3 equal labels keeps at least one 30 ms frame
    rng = np.random.default_rng(0)
    for _ in range(200):
        runs = rng.integers(3, 8, size=6)
        labels = np.repeat(np.arange(6), runs)
        assert set(stack_labels(labels).tolist()) == set(range(6))


def test_stack_labels_carries_trailing_dims():
    x = np.arange(10).reshape(5, 2)
    np.testing.assert_array_equal(stack_labels(x), x[[1, 4]])
