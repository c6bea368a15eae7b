"""Thin command-line entry points: `python -m asrkit.bin.<tool> --help` (console scripts ``asrkit-<tool>``).

One convention for every tool (the helpers are in asrkit/utils/cli.py):

* each tool has ``get_parser()`` (its argparse parser) and ``main(argv=None) -> int``;
* ``--nj N``: how many parallel jobs a tool runs, or, with ``--job J``, how many jobs the work is split
  into (Kaldi's meaning);
* ``--out-dir DIR`` names a directory a tool writes; ``--out FILE`` names the single file it writes
  (e.g. compute_cmvn's ``cmvn.npz``, subset_cuts' manifest, report's ``RESULTS.md``);
* ``--force``: redo (or replace) an output that is already done;
* booleans that take a value (``--equal-updates true``) accept true/false, yes/no, on/off, 1/0
  (:func:`asrkit.utils.cli.parse_bool`); optional values also take ``none``.

Old spellings (``--num-jobs``, ``--out`` for a directory, ``--output``, ``--overwrite``) are accepted
for one release and print a deprecation warning. Helpers shared by several tools live in
:mod:`asrkit.bin.common`.
"""
