"""Stage 6, the senone stage: from the triphone GMM system's 10 ms alignments to senone targets at 30 ms.

- :mod:`.convert`: 10 ms alignments -> 30 ms phone sequences (the frame rule, phone instances, lost phones).
- :mod:`.stage`: the driver (:func:`make_senones`): alignments, tree statistics, the senone tree
  (:mod:`asrkit.tree`), ``final.mdl`` (:mod:`asrkit.hmm`), per-frame targets, priors and the senone graph.
- :mod:`.realign`: new targets of the same sets from a network's scores (Kaldi's nnet realignment, through
  the GMM alignment's search), written as a senone dir of the same format (:func:`realign`).

It sits above gmm (it aligns with the GMM system) and tree (it builds the tree); neither imports it.
"""
from asrkit.senone.convert import ConvertCounts, convert_to_30ms, instance_ids, lost_phones
from asrkit.senone.realign import RealignConfig, RealignSummary, realign, realign_cuts
from asrkit.senone.stage import SenoneConfig, SenoneSummary, make_senones

__all__ = ["ConvertCounts", "convert_to_30ms", "instance_ids", "lost_phones", "SenoneConfig", "SenoneSummary",
           "make_senones", "RealignConfig", "RealignSummary", "realign", "realign_cuts"]
