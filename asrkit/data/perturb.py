"""Speed-perturbed copies of a labelled set (Kaldi's ``utils/data/perturb_data_dir_speed_3way.sh``).

A copy at factor f plays every cut f times faster (lhotse's ``cut.perturb_speed(f)``: the recording is
resampled, so duration and pitch both change) and is a set of its own, ``<set>_sp<f>`` (e.g.
``train_sup_sp0.9``), whose cut, recording and supervision ids carry lhotse's suffix ``_sp<f>``. Its
features are computed by stage 2 like any set's, and stage 6 aligns it with the triphone GMM as it aligns
any labelled set other than the GMM's training set; a copy whose alignment fails is left out there.

Speakers get the suffix too (``spk01_sp0.9``), as Kaldi prefixes them (``sp0.9-spk01``): perturbation
moves the formants, so per-speaker normalisation (the GMM's CMN when aligning, a network's
``cmvn_mode: speaker``) should use the copy's own statistics, not those pooled with the original voice.

Factor 1.0 is the original set itself (Kaldi's 3-way perturbation lists it): it is dropped with a note,
not copied.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable, List, Sequence, Union

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

OPTION = "--speed-perturb"  # the recipes' option: named in every error about the factors


def parse_speed_factors(spec: Union[str, Sequence, None], option: str = OPTION) -> List[float]:
    """The perturbation factors of ``spec`` ("0.9 1.1", "0.9,1.1", a list; empty or None: none), in the
    order given, duplicates and 1.0 dropped. A factor that is not a finite number > 0 is refused with a
    ``ValueError`` naming ``option``: a recipe checks this at start, before any stage runs."""
    if spec is None:
        return []
    items = spec.replace(",", " ").split() if isinstance(spec, str) else [str(x) for x in spec]
    factors: List[float] = []
    for item in items:
        try:
            f = float(item)
        except ValueError:
            raise ValueError(f"{option}: {item!r} is not a number (speed factors such as \"0.9 1.1\")") from None
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{option}: factor {item} must be a number > 0 (speed factors such as \"0.9 1.1\")")
        if f == 1.0:
            log.info("%s: factor 1.0 is the original set itself: no copy made for it", option)
            continue
        if f not in factors:
            factors.append(f)
    return factors


def speed_suffix(factor: float) -> str:
    """lhotse's suffix of a cut perturbed by ``factor``: ``_sp0.9`` (``cut.perturb_speed``'s ids)."""
    return f"_sp{factor}"


def perturbed_set_name(set_name: str, factor: float) -> str:
    """``train_sup`` at 0.9 -> ``train_sup_sp0.9``."""
    return set_name + speed_suffix(factor)


def perturb_cuts(cuts: Iterable, factor: float) -> Iterable:
    """The cuts played ``factor`` times faster (lazily, one at a time), speakers suffixed (module doc)."""
    from lhotse.utils import fastcopy

    suffix = speed_suffix(factor)
    for cut in cuts:
        p = cut.perturb_speed(factor)
        sups = [fastcopy(s, speaker=s.speaker + suffix) if s.speaker else s for s in p.supervisions]
        yield fastcopy(p, supervisions=sups)


def write_perturbed_sets(cuts_path: PathLike, set_name: str, factors: Sequence[float], out_dir: PathLike,
                         force: bool = False) -> List[Path]:
    """``<out_dir>/cuts_<set>_sp<f>.jsonl.gz`` for each factor, from the cuts of ``cuts_path`` (stage 1's
    manifest: recordings, no features). Each is written atomically with a done marker, streaming; one
    already done is skipped unless ``force``. Returns the manifests' paths."""
    from lhotse import CutSet

    from asrkit.data.lazy import open_cuts
    from asrkit.utils.atomic import atomic_path, done_marker, is_done, mark_done

    cuts_path = Path(cuts_path)
    if not cuts_path.exists():
        raise FileNotFoundError(f"cuts manifest not found: {cuts_path}")
    out = []
    for f in factors:
        if f <= 0:  # parse_speed_factors refuses these; a direct caller gets the same answer
            raise ValueError(f"speed factor {f} must be > 0")
        name = perturbed_set_name(set_name, f)
        path = Path(out_dir) / f"cuts_{name}.jsonl.gz"
        out.append(path)
        if is_done(path) and not force:
            log.info("%s is done, skipped", path)
            continue
        done_marker(path).unlink(missing_ok=True)
        n = seconds = 0
        with atomic_path(path) as tmp:
            with CutSet.open_writer(tmp) as writer:
                for c in perturb_cuts(open_cuts(cuts_path), f):
                    writer.write(c)
                    n, seconds = n + 1, seconds + c.duration
            if not n:  # inside the block: nothing is renamed into place
                raise ValueError(f"{cuts_path}: no cuts to perturb")
        mark_done(path)
        log.info("%s: %d cuts, %.1f s of audio at speed %g -> %s", name, n, seconds, f, path)
    return out
