"""The command-line convention of asrkit.bin (see asrkit/bin/__init__.py), in one place.

* :func:`parse_bool`: the one boolean parser of every tool (true/false, yes/no, on/off, 1/0).
* :func:`add_option`: an option with old spellings kept as aliases that warn (one release), e.g.
  ``add_option(p, "--nj", "--num-jobs", type=int, default=1)``.
* The shared options, one spelling each: :func:`add_nj`, :func:`add_out_dir`, :func:`add_out_file`,
  :func:`add_force`, :func:`add_verbose`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
NONE_WORDS = ("none", "null", "")


def parse_bool(value) -> bool:
    """``true|yes|on|1`` -> True, ``false|no|off|0`` -> False (any case); anything else is refused."""
    v = str(value).strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected one of {'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)}, "
                                     f"got {value!r}")


def optional(convert):
    """``convert`` that also takes ``none``/``null``/empty for None (optional config fields)."""
    def parse(value):
        return None if str(value).strip().lower() in NONE_WORDS else convert(value)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its errors
    return parse


class _WarnAlias(argparse.Action):
    """Stores (or, with ``nargs=0``, sets ``const``) like argparse's own actions, and prints a
    deprecation warning when the option was spelt one of the ``deprecated`` ways."""

    def __init__(self, option_strings, dest, deprecated: Sequence[str] = (), nargs=None, const=None, **kw):
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kw)
        self.deprecated = tuple(deprecated)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.deprecated:
            new = self.option_strings[0]
            print(f"{parser.prog}: warning: {option_string} is deprecated and goes in the next release; "
                  f"use {new}", file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_option(p, name: str, *old: str, flag: bool = False, **kw) -> argparse.Action:
    """``p.add_argument(name, ...)`` that also accepts each spelling in ``old`` with a warning on stderr.
    ``flag=True``: a switch (store_true). The help text names the old spellings."""
    if flag:
        kw.setdefault("default", False)
        kw.update(nargs=0, const=True)
    if old:
        kw["help"] = (kw.get("help") or "").rstrip() + f" ({', '.join(old)}: deprecated spelling)"
    if flag or old:
        return p.add_argument(name, *old, action=_WarnAlias, deprecated=old, **kw)
    return p.add_argument(name, **kw)


def add_nj(p, default: Optional[int] = 1, help: str = "parallel jobs", old: Sequence[str] = ("--num-jobs",)):
    """``--nj N``: how many parallel jobs (Kaldi's spelling)."""
    if default is not None:
        help += " (default %(default)s)"
    return add_option(p, "--nj", *old, type=int, default=default, help=help)


def add_out_dir(p, help: str, required: bool = True, default=None, old: Sequence[str] = ("--out",)):
    """``--out-dir DIR``: the directory a tool writes (``--out`` names a single output file)."""
    return add_option(p, "--out-dir", *old, required=required, default=default, help=help)


def add_out_file(p, help: str, required: bool = True, default=None, old: Sequence[str] = ()):
    """``--out FILE``: the single file a tool writes."""
    return add_option(p, "--out", *old, required=required, default=default, help=help)


def add_force(p, help: str = "redo even if the output is up to date", old: Sequence[str] = ("--overwrite",)):
    """``--force``: redo (and replace) outputs that are done."""
    return add_option(p, "--force", *old, flag=True, help=help)


def add_verbose(p):
    return p.add_argument("--verbose", action="store_true", help="debug logging")
