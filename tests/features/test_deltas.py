import numpy as np
import pytest

from asrkit.features import add_deltas, delta_windows


def test_delta_windows_kaldi():
    w = delta_windows(2, 2)
    np.testing.assert_allclose(w[0], [1.0])
    np.testing.assert_allclose(w[1], np.array([-2, -1, 0, 1, 2]) / 10)
    np.testing.assert_allclose(w[2], np.array([4, 4, 1, -4, -10, -4, 1, 4, 4]) / 100)


def test_add_deltas_hand_computed():
    # one dimension, 6 frames: x = t^2 (0, 1, 4, 9, 16, 25); edges replicate the first / last frame
    x = np.array([0, 1, 4, 9, 16, 25], dtype=np.float32)[:, None]
    y = add_deltas(x)
    assert y.shape == (6, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y[:, 0], x[:, 0])
    # delta[t] = sum_j j * x[clamp(t + j)] / 10
    # t=0: -2*0 -1*0 + 1*1 + 2*4 = 9 -> 0.9 ; t=2: -2*0 -1*1 +1*9 +2*16 = 40 -> 4.0
    # t=5: -2*9 -1*16 + 1*25 + 2*25 = 41 -> 4.1
    np.testing.assert_allclose(y[[0, 2, 5], 1], [0.9, 4.0, 4.1], rtol=1e-6)
    # delta-delta[t] = (4,4,1,-4,-10,-4,1,4,4)/100 over x[clamp(t-4..t+4)]
    # t=2: x at -2..6 clamped = 0,0,0,1,4,9,16,25,25 -> 0+0+0-4-40-36+16+100+100 = 136 -> 1.36
    np.testing.assert_allclose(y[2, 2], 1.36, rtol=1e-6)


def test_add_deltas_matches_direct_formula_random():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((17, 13)).astype(np.float32)
    y = add_deltas(x)
    n = len(x)
    w = delta_windows()
    for t in range(n):
        for order in (1, 2):
            half = (len(w[order]) - 1) // 2
            want = sum(w[order][j + half] * x[min(max(t + j, 0), n - 1)].astype(np.float64)
                       for j in range(-half, half + 1))
            np.testing.assert_allclose(y[t, 13 * order: 13 * (order + 1)], want, rtol=1e-5, atol=1e-5)


def test_add_deltas_constant_input_and_shapes():
    y = add_deltas(np.full((4, 2), 3.0, np.float32))
    np.testing.assert_allclose(y[:, 2:], 0.0, atol=1e-7)
    assert add_deltas(np.zeros((0, 13), np.float32)).shape == (0, 39)
    assert add_deltas(np.zeros((1, 13), np.float32)).shape == (1, 39)
    with pytest.raises(ValueError):
        add_deltas(np.zeros(13))
