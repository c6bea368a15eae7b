"""Seeded mixing-up against the bindings' split_by_count."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm.mixup import split_by_count, split_gmm, split_targets
from asrkit.gmm.model import gmm_params, single_gauss


def _am(num_pdfs: int, dim: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    am = kaldi_hmm_gmm.AmDiagGmm()
    for _ in range(num_pdfs):
        am.add_pdf(single_gauss(rng.normal(size=dim), rng.uniform(0.5, 2.0, size=dim)))
    return am


def _flat(am) -> np.ndarray:
    return np.concatenate([np.concatenate([a.ravel() for a in p]) for p in gmm_params(am)])


@pytest.mark.parametrize("target,min_count", [(40, 20.0), (200, 20.0), (60, 300.0)])
def test_targets_are_kaldis(target, min_count):
    occs = np.array([5000.0, 1200.0, 333.0, 90.0, 0.0, 15.0, 2500.0, 700.0])
    kaldi_am = _am(len(occs))
    kaldi_am.split_by_count(state_occs=occs.astype(np.float32), target_components=target, perturb_factor=0.01,
                            power=0.2, min_count=min_count)
    expected = [kaldi_am.num_gauss_in_pdf(p) for p in range(len(occs))]
    assert split_targets(occs, target, 0.2, min_count) == expected
    assert expected[4] == 1  # a pdf without data keeps its one Gaussian


def test_split_keeps_weight_and_mean_and_repeats_with_the_seed():
    g = single_gauss(np.array([1.0, -2.0]), np.array([0.25, 4.0]))
    split_gmm(g, 3, 0.1, np.random.default_rng(7))
    assert g.num_gauss == 3
    w = np.asarray(g.weights)
    np.testing.assert_allclose(sorted(w), [0.25, 0.25, 0.5], rtol=1e-6)
    # each split moves two halves of a Gaussian apart symmetrically: the mixture's mean stays where it was
    mi = np.asarray(g.means_invvars)
    np.testing.assert_allclose(w @ mi, np.array([1.0, -2.0]) / np.array([0.25, 4.0]), rtol=1e-5)
    assert np.abs(mi - mi[0]).max() > 0.01  # and the components differ
    np.testing.assert_allclose(np.asarray(g.inv_vars), np.tile([4.0, 0.25], (3, 1)), rtol=1e-6)
    assert g.valid_gconsts
    again = single_gauss(np.array([1.0, -2.0]), np.array([0.25, 4.0]))
    split_gmm(again, 3, 0.1, np.random.default_rng(7))
    np.testing.assert_array_equal(np.asarray(again.means_invvars), mi)


def test_same_seed_same_model_other_seed_other_model():
    occs = np.array([3000.0, 800.0, 50.0])
    runs = []
    for seed in (0, 0, 1):
        am = _am(3)
        split_by_count(am, occs, 12, 0.01, 0.2, 20.0, seed)
        assert am.num_gauss == 12
        runs.append(_flat(am))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
