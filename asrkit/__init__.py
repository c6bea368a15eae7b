"""asrkit: Kaldi-style recipes for semi-supervised teacher-student acoustic models.

Dependency order
----------------
The packages (and the top-level module ``fst``) form layers, as Kaldi's src/Makefile
orders its directories. A package imports only packages of *lower* layers, never one of its own layer
or above, so no two packages import each other. ``tests/test_layering.py`` reads the table below and
fails on an import against it (function-level imports included); a new package must be added here::

    layer  package      what it is (and what it imports from asrkit)
    0      utils        atomic outputs, done markers, locks, logging, BLAS threads (nothing)
    1      fst          the FST stack, imported in the one order that does not freeze (nothing)
    2      data         stage 1: Kaldi data dirs <-> lhotse manifests, validation, splits (utils)
    2      hmm          topologies, transition models, tree files, the asrkit-hmm-v1 model file (fst)
    2      distributed  torchrun helpers, GTC, BMUF, averaging, communication accounting (nothing)
    2      pseudo       pseudo-label and training shards, the distillation loss, batch schedules (utils)
    2      synth        the embedded espeak-ng corpus (utils)
    3      features     stage 2: fbank / MFCC, CMVN, deltas, the frame rule (data)
    3      lang         stage 3: lexicons, lang dirs, LMs, G.fst (fst, hmm)
    3      decode       HCLG decoding of pdf scores, WER scoring (fst)
    3      graph        HCLG construction, Kaldi's mkgraph (fst, hmm)
    3      tree         phonetic decision trees, pure algorithm (hmm)
    4      gmm          stages 4-5: GMM-HMM training, alignment, decoding (tree, graph, decode, features)
    5      senone       stage 6: senone tree, targets, priors and graph at 30 ms (gmm, tree, graph)
    6      nnet         stages 7-13: networks, datasets, training, inference (pseudo, distributed, features)
    7      infer        using a trained system: model dirs, recognizer, transcribe (gmm, nnet, decode, ...)
    7      report       the recipe's report, stage 16, its ablation table (decode, nnet)
    8      testing      test fixtures: tiny corpora, lang dirs, models (anything)
    9      bin          the command-line programs (anything)

This module itself imports nothing of asrkit (any layer may read ``asrkit.__version__``).
"""
__version__ = "0.1.0"
