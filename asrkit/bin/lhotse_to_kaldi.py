"""A lhotse manifest (recordings + supervisions, or cuts) as a Kaldi data dir, for recipes whose stage 1
reads Kaldi data dirs (egs/TEMPLATE/s5). Audio paths under --audio-root are written relative to it.

Examples:
  python -m asrkit.bin.lhotse_to_kaldi --recordings recs.jsonl.gz --supervisions sups.jsonl.gz --out-dir data/local/train_sup
  python -m asrkit.bin.lhotse_to_kaldi --cuts cuts_unlab.jsonl.gz --out-dir data/local/train_unsup --no-text \\
      --oracle-text data/local/oracle/train_unsup/text
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.utils.cli import add_out_dir
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.lhotse_to_kaldi")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.lhotse_to_kaldi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recordings", help="RecordingSet manifest (with --supervisions)")
    p.add_argument("--supervisions", help="SupervisionSet manifest (with --recordings)")
    p.add_argument("--cuts", help="CutSet manifest (instead of --recordings/--supervisions)")
    add_out_dir(p, "the Kaldi data dir to write")
    p.add_argument("--audio-root", default=None, help="audio paths under it are written relative to it")
    p.add_argument("--no-text", action="store_true", help="unlabelled set: write no text file")
    p.add_argument("--oracle-text", default=None, help="with --no-text: where to write the transcripts (if any)")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if bool(args.cuts) == bool(args.recordings or args.supervisions) or (
            not args.cuts and not (args.recordings and args.supervisions)):
        log.error("give either --cuts, or both --recordings and --supervisions")
        return 2
    from lhotse import CutSet, RecordingSet, SupervisionSet
    from lhotse.utils import fastcopy

    from asrkit.data.manifests import export_kaldi_dir, manifests_to_kaldi_dir
    from asrkit.utils.atomic import atomic_write_text, mark_done

    try:
        if args.cuts:
            cuts = CutSet.from_file(args.cuts)
            sups = [s for c in cuts for s in c.supervisions]
        else:
            recs = RecordingSet.from_file(args.recordings)
            sups = list(SupervisionSet.from_file(args.supervisions))
        src = args.cuts or args.supervisions
        if not sups:
            raise ValueError(f"{src}: no supervisions")
        if args.no_text:
            if args.oracle_text and any(s.text for s in sups):
                atomic_write_text(args.oracle_text, "".join(f"{s.id} {s.text}\n" for s in sorted(sups, key=lambda s: s.id) if s.text))
                mark_done(args.oracle_text)
            if args.cuts:
                cuts = cuts.map(lambda c: fastcopy(c, supervisions=[fastcopy(s, text=None) for s in c.supervisions]))
            else:
                sups = [fastcopy(s, text=None) for s in sups]
        else:
            missing = [s.id for s in sups if not (s.text or "").strip()]
            if missing:
                raise ValueError(f"{src}: {len(missing)} supervision(s) without text, e.g. {missing[0]!r} "
                                 f"(an unlabelled set takes --no-text)")
        if args.cuts:
            export_kaldi_dir(cuts, args.out_dir, audio_root=args.audio_root)
        else:
            manifests_to_kaldi_dir(recs, SupervisionSet.from_segments(sups), args.out_dir, audio_root=args.audio_root)
        mark_done(args.out_dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        log.error("%s", e)
        return 1
    log.info("wrote %s (%d utterances)", Path(args.out_dir), len(sups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
