"""Thin command-line entry points: `python -m asrkit.bin.<tool> --help`."""
