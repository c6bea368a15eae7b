"""One log format for every entry point: time stamp, level, module and line, like Kaldi's logs."""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s [%(module)s:%(lineno)d] %(message)s"


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property always wins
        pass


def setup_logging(verbose: bool = False) -> None:
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
