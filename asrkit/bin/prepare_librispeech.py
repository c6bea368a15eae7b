"""LibriSpeech stages 0-1 (corpus part): download its subsets, or write the Kaldi data dirs of its sets.

Sets: train_sup (train-clean-100), train_unsup (train-clean-360 + train-other-500, transcripts only in
<out>/oracle/train_unsup/text), dev_clean, dev_other, test_clean, test_other.

Examples:
  python -m asrkit.bin.prepare_librispeech download --dest download
  python -m asrkit.bin.prepare_librispeech download --dest download --subsets dev-clean,test-clean \\
      --base-url file:///mirror/openslr/12
  python -m asrkit.bin.prepare_librispeech kaldi --corpus-dir download/LibriSpeech --out-dir data/local/corpus
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from asrkit.utils.cli import add_nj
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.prepare_librispeech")


def get_parser() -> argparse.ArgumentParser:
    from asrkit.data.librispeech import BASE_URL, SETS, SUBSETS

    p = argparse.ArgumentParser(prog="python -m asrkit.bin.prepare_librispeech", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download and extract subsets into DEST/LibriSpeech/<subset>")
    d.add_argument("--dest", required=True)
    d.add_argument("--subsets", default=",".join(SUBSETS), help="comma-separated (default: all seven)")
    d.add_argument("--base-url", default=BASE_URL, help="where <subset>.tar.gz live (default: %(default)s)")
    d.add_argument("--remove-archives", action="store_true", help="delete each archive once extracted")
    d.add_argument("--no-checksum", action="store_true",
                   help="do not check the archives against OpenSLR's sha256 (archives of one's own)")
    k = sub.add_parser("kaldi", help="Kaldi data dirs of the recipe's sets")
    k.add_argument("--corpus-dir", required=True, help="the LibriSpeech folder (holds train-clean-100/, ...)")
    k.add_argument("--out-dir", required=True, help="writes OUT/<set>/ and OUT/oracle/train_unsup/text")
    k.add_argument("--sets", default=",".join(SETS), help="comma-separated (default: %(default)s)")
    add_nj(k, help="threads reading audio headers")
    k.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="an utterance without readable audio: fail, or skip and count it (default: fail)")
    k.add_argument("--force", action="store_true")
    for q in (d, k):
        q.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    from asrkit.data.download import ChecksumError
    from asrkit.data.librispeech import SHA256, LibriSpeechError, download_librispeech, librispeech_kaldi_dirs

    try:
        if args.command == "download":
            root = download_librispeech(args.dest, [s for s in args.subsets.split(",") if s], args.base_url,
                                        keep_archives=not args.remove_archives,
                                        sha256=None if args.no_checksum else SHA256)
            print(root)
        else:
            librispeech_kaldi_dirs(args.corpus_dir, args.out_dir, [s for s in args.sets.split(",") if s],
                                   num_jobs=args.nj, on_error=args.on_error, force=args.force)
    except (LibriSpeechError, ChecksumError, OSError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
