"""One log format for every entry point: time stamp, level, module and line, like Kaldi's logs."""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s [%(module)s:%(lineno)d] %(message)s"


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=FORMAT,
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
