"""Download a URL (resuming a partial download), check its md5, extract a tar archive; skip when done.

Example:
  python -m asrkit.bin.download --url https://www.openslr.org/resources/101/speechocean762.tar.gz \\
      --dest download/
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from asrkit.data.download import ChecksumError, download_and_extract
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.download")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="http(s):// or file:// URL")
    p.add_argument("--dest", required=True, help="folder to download (and extract) into")
    p.add_argument("--md5", default=None, help="expected md5 of the downloaded file")
    p.add_argument("--no-extract", action="store_true", help="do not extract a tar archive")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        paths = download_and_extract(args.url, args.dest, md5=args.md5, extract=not args.no_extract)
    except (ChecksumError, OSError, ValueError) as e:
        log.error(f"download of {args.url} failed: {e}")
        return 1
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
