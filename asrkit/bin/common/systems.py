"""How a tool names a trained system of a recipe: ``--exp-dir``, ``--system``, ``--data-dir`` (and
``--lm-weight``), one block for export_model and decode_data."""
from __future__ import annotations


def add_system_args(p, system_group=None, system_required: bool = False, with_system: bool = True) -> None:
    """``--exp-dir``, ``--system`` (into ``system_group`` when given, e.g. a mutually exclusive group with
    ``--model``), ``--data-dir`` and ``--lm-weight`` on parser ``p``."""
    if with_system:
        (system_group or p).add_argument(
            "--system", required=system_required, default=None,
            help="a system of --exp-dir: a network (teacher, student_sup, student_ssl_inter, ...) or a GMM "
                 "(mono, tri)")
    p.add_argument("--exp-dir", default="exp", help="the recipe's exp/ (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="the recipe's data/ (default: beside --exp-dir)")
    p.add_argument("--lm-weight", type=float, default=None, help="LM weight instead of the one chosen on dev")
