"""Test fixtures: tiny inputs made in seconds, for tests/ and tools/bench/ (as ``lhotse.testing``).

Nothing under ``asrkit/`` outside this package imports it; it may import any other package (it sits
above them all in the import order of :mod:`asrkit`). Fixtures are built on the production writers
(lang dirs through :mod:`asrkit.lang.lang_dir`, speech through :mod:`asrkit.synth.espeak`), so a test
sees the files a recipe would write.

Naming: modules are named after what they make; a function that writes files is ``write_*`` and takes
the output path first (returning it, or what it wrote); a function that builds objects in memory is
``make_*``; fixed inputs are ``TOY_*`` constants; checks are named for what they answer.

* :mod:`.corpus` — Kaldi data dirs of noise in the synthetic corpus's layout (stage 1 tests)
* :mod:`.digits` — spoken digits (espeak-ng) with every word's start known to the sample (GMM tests)
* :mod:`.lang` — lang dirs for a small lexicon, and grammars (a sentence list, a word loop)
* :mod:`.oracle` — a stand-in model of a toy lang dir, oracle alignments and scores (graph, decoding)
* :mod:`.cuts` — labelled cuts: fbank plus 30 ms senone targets, stored as stage 6 stores them
* :mod:`.tree` — tree statistics and per-frame data with a planted context effect (no audio)
* :mod:`.recipe` — a recipe's ``data/`` and ``exp/`` with random networks (inference tests)
* :mod:`.processes` — whether a process is still running (tests of job runners and daemons)
"""
