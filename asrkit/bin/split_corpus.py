"""Stage 1 for a corpus split by speakers: validate it once, write each set's manifests.

Default: speechocean762 (data dir <corpus>/train, audio root <corpus>) split into train_sup /
train_unsup / dev / test by 40/35/10/15 % of the speakers. train_unsup keeps no transcript; its true
text goes only to <out>/oracle/cuts_train_unsup.jsonl.gz. Example (from egs/speechocean762/s5):
  python -m asrkit.bin.split_corpus --corpus-dir /path/speechocean762 --out-dir data/manifests --seed 762
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.data import speechocean762 as so
from asrkit.data.validate import DEFAULT_MIN_DURATION, DEFAULT_SAMPLE_RATE, DataValidationError
from asrkit.utils.cli import add_out_dir
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.split_corpus")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m asrkit.bin.split_corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--corpus-dir", required=True, help="corpus root (relative wav.scp paths start here)")
    p.add_argument("--data-dir", default=None, help="Kaldi data dir to split (default: <corpus-dir>/train)")
    add_out_dir(p, "manifest folder (default: %(default)s)", required=False, default="data/manifests")
    p.add_argument("--kaldi-view-root", default=None,
                   help="write each set's Kaldi view to <root>/<set> (default: <out>/..; 'none' to skip)")
    default_props = ",".join(f"{k}={v}" for k, v in so.DEFAULT_PROPORTIONS.items())
    p.add_argument("--proportions", default=default_props,
                   help="set=fraction of speakers, comma-separated, in order (default: %(default)s)")
    p.add_argument("--speaker-lists", default=None,
                   help="file of lines '<set> <spk> <spk> ...' instead of proportions (e.g. a split_speakers.txt)")
    p.add_argument("--unlabelled-sets", default="train_unsup",
                   help="comma-separated sets that keep no transcript (default: %(default)s)")
    p.add_argument("--seed", type=int, default=so.DEFAULT_SEED, help="shuffling seed (default: %(default)s)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail")
    p.add_argument("--min-duration", type=float, default=DEFAULT_MIN_DURATION)
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="0 accepts any")
    p.add_argument("--force", action="store_true", help="redo even if done markers say it is done")
    p.add_argument("--channel", type=int, default=None,
                   help="take this channel (0-based) of multi-channel audio (refused otherwise)")
    p.add_argument("--downmix", action="store_true", help="average the channels of multi-channel audio")
    p.add_argument("--verbose", action="store_true")
    return p


@releases_claims
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    from asrkit.data.split import parse_proportions, prepare_split, read_speaker_lists, split_outputs  # lhotse: not for --help

    view_root = args.kaldi_view_root
    if view_root is None:
        view_root = Path(args.out_dir).parent
    elif view_root.lower() == "none":
        view_root = None
    try:
        data_dir = Path(args.data_dir) if args.data_dir else so.data_dir(args.corpus_dir)
        lists = read_speaker_lists(args.speaker_lists) if args.speaker_lists else None
        props = None if lists is not None else parse_proportions(args.proportions)
        unlabelled = [s for s in args.unlabelled_sets.split(",") if s]
        claim_output(args.out_dir, "split_corpus")
        g = guard(f"split of {data_dir} in {args.out_dir}",
                  split_outputs(args.out_dir, list(lists if lists is not None else props), unlabelled, view_root),
                  fingerprint(options_of(args, drop=("out_dir", "kaldi_view_root")),
                              {"data_dir": data_dir, "speaker_lists": args.speaker_lists}), force=args.force)
        prepare_split(
            data_dir, args.out_dir, audio_root=args.corpus_dir, proportions=props, speaker_lists=lists,
            seed=args.seed, unlabelled_sets=[s for s in args.unlabelled_sets.split(",") if s],
            on_error=args.on_error, min_duration=args.min_duration, sample_rate=args.sample_rate or None,
            kaldi_view_root=view_root, force=args.force, channel=args.channel,
            downmix=args.downmix,
        )
        g.stamp()
    except (DataValidationError, FileNotFoundError, ValueError, StaleOutputError) as e:
        log.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
