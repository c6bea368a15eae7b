"""Stage 1 for one set: validate a Kaldi data dir, write its lhotse manifests and Kaldi view.

Example (synthetic recipe, from egs/<corpus>/s5):
  python -m asrkit.bin.prepare_manifests --data-dir corpus/data/train_sup --audio-root corpus \\
      --set train_sup --out-dir data/manifests
  python -m asrkit.bin.prepare_manifests --data-dir corpus/data/train_unsup --audio-root corpus \\
      --set train_unsup --out-dir data/manifests --labelled false --oracle-text corpus/oracle/train_unsup/text
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.data.validate import DEFAULT_MIN_DURATION, DEFAULT_SAMPLE_RATE, DataValidationError
from asrkit.utils.cli import add_out_dir, parse_bool
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.prepare_manifests")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m asrkit.bin.prepare_manifests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", required=True, help="Kaldi data dir (wav.scp, utt2spk, [text, segments, "
                   "utt2cond, phones.ctm])")
    p.add_argument("--audio-root", default=None, help="corpus root that relative wav.scp paths are taken "
                   "against (default: the current directory)")
    p.add_argument("--set", dest="set_name", required=True, help="set name, e.g. train_sup")
    add_out_dir(p, "manifest folder (default: %(default)s)", required=False, default="data/manifests")
    p.add_argument("--labelled", type=parse_bool, default=True, help="true|false: an unlabelled set keeps no "
                   "transcript (default: true)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="fail on the first bad data (listing every problem), or skip and count (default: fail)")
    p.add_argument("--min-duration", type=float, default=DEFAULT_MIN_DURATION,
                   help="shortest utterance kept, seconds (default: %(default)s)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                   help="expected sample rate; 0 accepts any (default: %(default)s)")
    p.add_argument("--oracle-text", default=None, help="true transcripts of an unlabelled set: written only "
                   "to <out>/oracle/cuts_<set>.jsonl.gz")
    p.add_argument("--kaldi-view-dir", default=None, help="where to write the set's Kaldi data dir view "
                   "(default: <out>/../<set>; 'none' to skip)")
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
    from asrkit.data.manifests import expected_outputs, prepare_manifests  # lhotse is slow to import: not for --help

    view = args.kaldi_view_dir
    if view is None:
        view = Path(args.out_dir).parent / args.set_name
    elif view.lower() == "none":
        view = None
    claim_output(args.out_dir, "prepare_manifests")
    try:
        with_oracle = not args.labelled and (args.oracle_text is not None
                                             or (Path(args.data_dir) / "text").is_file())
        g = guard(f"manifests of {args.set_name} in {args.out_dir}",
                  expected_outputs(args.out_dir, args.set_name, with_oracle, view),
                  fingerprint(options_of(args, drop=("out_dir", "kaldi_view_dir")),
                              {"data_dir": args.data_dir, "oracle_text": args.oracle_text}), force=args.force)
        prepare_manifests(
            args.data_dir, args.set_name, args.out_dir, args.audio_root, labelled=args.labelled,
            on_error=args.on_error, min_duration=args.min_duration, sample_rate=args.sample_rate or None,
            oracle_text=args.oracle_text, kaldi_view_dir=view, force=args.force, channel=args.channel,
            downmix=args.downmix,
        )
        g.stamp()
    except (DataValidationError, FileNotFoundError, ValueError, StaleOutputError) as e:
        log.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
