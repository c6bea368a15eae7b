"""The embedded synthetic speech corpus (espeak-ng): no download, true phone segmentations.

Public API::

    from asrkit.synth import SynthConfig, make_corpus
    make_corpus("corpus", SynthConfig(seed=0), nj=2)

Modules: ``espeak`` (ctypes wrapper of libespeak-ng with phoneme events), ``phones`` (Kaldi-safe phone
symbols), ``text`` (seeded sentence grammar over the embedded vocabulary in ``data/``), ``speakers``
(voice/variant/pitch/rate speakers, disjoint across splits), ``acoustics`` (resampling, noise, babble,
synthetic RIRs), ``utterance`` (one utterance end to end), ``corpus`` (planning, parallel jobs, writing).
"""
from asrkit.synth.corpus import SynthConfig, make_corpus, plan
from asrkit.synth.espeak import EspeakError

__all__ = ["SynthConfig", "make_corpus", "plan", "EspeakError"]
