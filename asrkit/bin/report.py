"""Stage 16: RESULTS.md and RESULTS.png from the decode dirs (see asrkit.report).

  python -m asrkit.bin.report --exp exp --data data --sets "dev test_clean test_noisy" --out RESULTS.md

Test sets first, dev (the tuning set) last; each network's updates; systems trained with several seeds
(exp/<system>/seed<S>/) as mean ± standard deviation, compared by a bootstrap over seeds and utterances;
interleaved against segregated; per condition where data/<set>/utt2cond exists.
Where stage 14 ran (exp/sweep/x<R>/sweep.json), a section of WER against the amount of
unlabelled data and RESULTS_sweep.png; where stage 15 ran (exp/dist_<mode>/comm.json), a section
per sync mode: WER, bytes sent per worker, compression against dense all-reduce, wall time. Where exp/
holds variants of the teacher or the supervised student (teacher_<what>, student_sup_<what>), an ablation
table labelled by what each run's config.yaml changes against exp/teacher / exp/student_sup.
"""
from __future__ import annotations

import argparse
import sys

from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", default="exp", help="folder of the systems (default exp)")
    p.add_argument("--data", default="data", help="folder of the Kaldi views holding <set>/text (default data)")
    p.add_argument("--sets", required=True, help="evaluation sets, space or comma separated")
    p.add_argument("--out", default="RESULTS.md")
    p.add_argument("--title", default="Results")
    p.add_argument("--no-plot", action="store_true", help="no PNGs (RESULTS.png, RESULTS_sweep.png)")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging()
    from asrkit.report import write_report

    sets = [s for s in a.sets.replace(",", " ").split() if s]
    write_report(a.exp, a.data, sets, a.out, a.title, plot=not a.no_plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
