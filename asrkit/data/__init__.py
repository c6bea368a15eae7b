"""Stage 1: Kaldi data dirs <-> lhotse manifests, validation, speaker-disjoint splits, corpus download.

Modules: :mod:`~asrkit.data.kaldi_dir` (read/write data dirs), :mod:`~asrkit.data.validate` (issues and
reports), :mod:`~asrkit.data.manifests` (conversion and the one-set driver), :mod:`~asrkit.data.split`
(speaker-disjoint splits), :mod:`~asrkit.data.perturb` (speed-perturbed copies of a labelled set),
:mod:`~asrkit.data.speechocean762`, :mod:`~asrkit.data.download`.
Tiny corpora for tests are made by :mod:`asrkit.testing.corpus`. Names are imported lazily (lhotse is slow
to import).
"""
from importlib import import_module

_EXPORTS = {
    "read_kaldi_dir": "kaldi_dir",
    "write_kaldi_dir": "kaldi_dir",
    "PreparedSet": "manifests",
    "export_kaldi_dir": "manifests",
    "load_kaldi_data_dir": "manifests",
    "manifests_to_kaldi_dir": "manifests",
    "prepare_manifests": "manifests",
    "strip_text": "manifests",
    "parse_speed_factors": "perturb",
    "write_perturbed_sets": "perturb",
    "prepare_split": "split",
    "split_speakers": "split",
    "prepare_speechocean762": "speechocean762",
    "download_and_extract": "download",
    "DataValidationError": "validate",
    "ValidationIssue": "validate",
    "ValidationReport": "validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"asrkit.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'asrkit.data' has no attribute {name!r}")
