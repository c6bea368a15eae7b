"""Semi-supervised student training (stages 11-13): labelled batches with hard senone targets and
machine-labelled batches with the teacher's top-k posteriors, in one loop.

* **Machine-labelled data**: the fbank cuts of ``train_unsup`` (no text) take their targets from the
  pseudo-label shards (:class:`asrkit.pseudo.shards.PseudoLabelReader`, ``get(cut_id)``: int64 ids,
  float32 probabilities renormalised to one). The reader refuses a shard set made for another senone
  inventory (``num_senones`` or the checksum of ``exp/senone/tree`` differ:
  :class:`asrkit.pseudo.shards.LabelMismatchError`); every shard's blake2b is verified once, in the main
  process, before training. Cuts that labelling filtered or skipped (not in the index) are left out and
  counted in the log. Chunking, padding and masking are the hard targets' (:class:`ChunkDataset`,
  ``kind="soft"``); the loss is :func:`asrkit.pseudo.loss.topk_distillation_loss` through
  :func:`asrkit.nnet.losses.compute_loss`.
* **Order** (:class:`asrkit.pseudo.schedule.Schedule`): each epoch is one pass over both batch lists,
  each list made by its own :class:`BucketingBatchSampler` from ``(seed, epoch)`` (the machine one from
  ``(seed + 1, epoch)``). ``interleaved``: ``ratio`` machine batches per labelled batch (default: spread
  so that both lists end together); ``segregated``: every machine batch, then every labelled one;
  ``supervised``: labelled batches only (the baseline; also the oracle student, trained on the
  labelled cuts plus the unlabelled ones with targets from their true transcripts). Interleaved and
  segregated see the same batches, the same number of updates and the same learning rates; only the
  order differs.
* **Length**: ``num_epochs`` passes over both lists; with ``equal_updates`` it counts epochs of the
  supervised student instead (passes over the first labelled manifest, train_sup), and the student
  trains ``ceil(num_epochs x train_sup hours / hours of an epoch)`` epochs: the comparison of stages 9,
  11-13 at equal updates (batches hold a fixed number of frames, so updates follow hours).
* **Learning rate**: the scheduler's LR (per update, as in :mod:`asrkit.nnet.train`) times
  ``labelled_lr_mult`` on labelled batches (default 2.0) and ``machine_lr_mult`` (1.0) on machine
  batches; ``supervised`` uses 1.0, so it is plain training.
* **Resume**: the schedule position is the checkpoint's ``batch_in_epoch``; the checkpoint also holds
  the ``ssl`` settings and the epoch's list sizes, and a resume under another mode, ratio or data is
  refused. On CPU a resumed run gives the same parameters as an uninterrupted one.
* **Logs**: loss and frame accuracy per kind in the epoch lines, ``history.jsonl``
  (``train_loss_labelled``, ``train_acc_labelled``, ``train_loss_machine``, ``train_acc_machine``)
  and TensorBoard (``train_labelled/*``, ``train_machine/*``); the machine "accuracy" is the agreement
  of the student's argmax with the teacher's top-1.

* **Distributed** (torchrun, ``--sync``): each batch list is sharded on its own (rank r takes batches r,
  r+N, ... of the same seeded order, padded by repeating the head so that every rank has as many), and
  the schedule runs over the local lists, the same on every rank: each update is of one kind and one
  learning-rate multiplier on all ranks (different multipliers would make ddp/gtc replicas diverge).
  ``batch_in_epoch`` counts this rank's updates.

With ``num_workers > 0`` each kind has its own DataLoader (created when the schedule first asks for
that kind in an epoch), so interleaved training runs up to twice ``num_workers`` worker processes.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from asrkit.nnet.dataset import ChunkDataset, label_frames, load_cuts, make_loader
from asrkit.nnet.sampler import BucketingBatchSampler, shard_positions
from asrkit.nnet.train import Trainer, TrainConfig, TrainResult, _to_yaml
from asrkit.pseudo.schedule import LABELLED, MACHINE, Schedule, ScheduleConfig
from asrkit.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
MODES = ("supervised", "interleaved", "segregated")
MACHINE_SEED_OFFSET = 1
KIND_NAMES = {"hard": "labelled", "soft": "machine"}


@dataclass
class SslConfig:
    mode: str = "interleaved"  # supervised | interleaved | segregated
    ratio: Optional[str] = None  # machine batches per labelled batch (e.g. "3", "2.5", "7/2"); None: proportional
    labelled_lr_mult: float = 2.0
    machine_lr_mult: float = 1.0
    machine_max_frames: Optional[int] = None  # padded frames per machine batch; None: TrainConfig.max_frames
    # num_epochs counts epochs of the supervised student (passes over the first labelled manifest): train
    # as many updates as it makes, over epochs that pass over more data (equal_update_epochs)
    equal_updates: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: expected one of {MODES}")
        if self.ratio is not None:
            self.ratio = str(self.ratio)
            if Fraction(self.ratio) <= 0:
                raise ValueError(f"ratio must be positive, got {self.ratio}")
        if self.labelled_lr_mult <= 0 or self.machine_lr_mult <= 0:
            raise ValueError("learning-rate multipliers must be positive")

    def to_dict(self) -> Dict:
        return asdict(self)


def open_pseudo_labels(pseudo_dir: PathLike, num_senones: int, tree: Optional[PathLike], verify: bool = True):
    """The :class:`PseudoLabelReader` of ``pseudo_dir`` checked against the student's senone inventory
    (``tree``: ``exp/senone/tree``; None skips the tree check), every shard verified and opened."""
    from asrkit.pseudo.shards import PseudoLabelReader, tree_checksum

    checksum = tree_checksum(tree) if tree is not None else None
    labels = PseudoLabelReader(pseudo_dir, num_senones=num_senones, tree_checksum=checksum, verify=verify)
    for si in range(len(labels.index["shards"])):
        labels.shard(si)  # blake2b once here; DataLoader workers inherit the open memmaps
    return labels


def select_labelled(cuts, labels) -> Tuple[list, List[str]]:
    """``(cuts that have pseudo-labels, ids of those that have none)``, logged with the reasons the
    index gives (filtered by confidence, skipped by the labeller) where it gives one."""
    have = label_frames(labels)
    kept, missing = [], []
    for c in cuts:
        if c.id in have:
            kept.append(c)
        else:
            missing.append(c.id)
    if missing:
        why: Dict[str, str] = {}
        for sh in labels.index["shards"]:
            for d in sh.get("filtered", []):
                why[d["id"]] = "filtered"
            for d in sh.get("skipped", []):
                why[d["id"]] = "skipped"
        n_f = sum(1 for u in missing if why.get(u) == "filtered")
        n_s = sum(1 for u in missing if why.get(u) == "skipped")
        log.warning("machine-labelled data: %d of %d cuts have no pseudo-labels and are left out (%d filtered by "
                    "confidence, %d skipped by the labeller, %d not in the index); first: %s", len(missing),
                    len(kept) + len(missing), n_f, n_s, len(missing) - n_f - n_s, ", ".join(missing[:5]))
    extra = len(have) - len(kept)
    if extra:
        log.info("pseudo-labels: %d labelled utterances are not in the unlabelled cuts given (unused)", extra)
    return kept, missing


def _sources(sources: Union[PathLike, Sequence]) -> list:
    """A manifest, a CutSet, a list of cuts, or a list of those -> a list of sources."""
    sources = list(sources) if not (isinstance(sources, (str, Path)) or hasattr(sources, "to_eager")) else [sources]
    if sources and not all(isinstance(x, (str, Path)) or hasattr(x, "to_eager") or isinstance(x, (list, tuple))
                           for x in sources):
        sources = [sources]  # one list of cuts
    return sources


def equal_update_epochs(num_epochs: int, reference_seconds: float, epoch_seconds: float) -> int:
    """Epochs over ``epoch_seconds`` of audio that make about as many updates as ``num_epochs`` epochs
    over ``reference_seconds`` (batches hold a fixed number of frames): at least one, rounded up."""
    if reference_seconds <= 0 or epoch_seconds <= 0:
        raise ValueError("equal updates need audio in both the reference and the epoch's data")
    return max(1, math.ceil(num_epochs * reference_seconds / epoch_seconds - 1e-9))


def concat_cuts(sources: Union[PathLike, Sequence]) -> list:
    """Cuts of one manifest / CutSet, or of several concatenated (the oracle: labelled + unlabelled with
    true-transcript targets); duplicate ids are refused."""
    out, seen = [], set()
    for src in _sources(sources):
        for c in load_cuts(src):
            if c.id in seen:
                raise ValueError(f"cut {c.id} appears twice in the labelled cuts ({src})")
            seen.add(c.id)
            out.append(c)
    return out


class SslTrainer(Trainer):
    """:class:`Trainer` over two batch lists ordered by a :class:`Schedule` (module doc).

    ``current`` holds what the last update trained on (``kind``, ``cut_ids``, ``starts``, ``lr_mult``,
    ``position``): a ``step_hook`` can read it together with ``opt.param_groups``."""

    def __init__(self, cfg: TrainConfig, labelled_cuts, unlabelled_cuts, dev_cuts, reader, out_dir: PathLike,
                 ssl: Optional[SslConfig] = None, labels=None, step_hook: Optional[Callable[[int], None]] = None,
                 resume: bool = True, **dist_kw):
        self.ssl = ssl or SslConfig()
        self.kind_names = dict(KIND_NAMES)
        self.current: Optional[Dict] = None
        self._resumed_ssl: Optional[Dict] = None
        self.machine_set: Optional[ChunkDataset] = None
        self.left_out: List[str] = []
        if self.ssl.mode != "supervised":
            if labels is None or unlabelled_cuts is None:
                raise ValueError(f"mode {self.ssl.mode} needs unlabelled cuts and their pseudo-labels")
            if labels.num_senones != cfg.num_senones:  # the reader checks it too when given num_senones
                raise ValueError(f"pseudo-labels have num_senones={labels.num_senones}, the student "
                                 f"{cfg.num_senones}")
            kept, self.left_out = select_labelled(load_cuts(unlabelled_cuts), labels)
            if not kept:
                raise ValueError("no unlabelled cut has pseudo-labels (wrong --pseudo-dir or cuts?)")
            self.machine_set = ChunkDataset.from_cuts(kept, reader, cfg.chunk_size, cfg.left_context,
                                                      cfg.effective_right_context, cfg.min_chunk, "soft",
                                                      cfg.num_senones, labels=labels)
        self._labels_meta = None
        if labels is not None:
            idx = getattr(labels, "index", {}) or {}
            self._labels_meta = {k: idx.get(k) for k in ("num_senones", "tree_checksum", "k", "num_shards", "teacher")}
        sources = _sources(labelled_cuts)
        first = list(load_cuts(sources[0]))  # read once: concatenated below, and the reference of equal updates
        labelled = concat_cuts([first, *sources[1:]])
        if self.ssl.equal_updates:
            reference = sum(c.duration for c in first)
            if reference <= 0:
                raise ValueError(f"--equal-updates: the first labelled cuts ({sources[0]}) hold no audio")
            epoch_seconds = sum(c.duration for c in labelled)
            if self.machine_set is not None:
                epoch_seconds += sum(c.duration for c in self.machine_set.cuts)
            epochs = equal_update_epochs(cfg.num_epochs, reference, epoch_seconds)
            log.info("equal updates: %d epochs over %.2f h make as many updates as %d over the first labelled "
                     "set's %.2f h", epochs, epoch_seconds / 3600, cfg.num_epochs, reference / 3600)
            cfg = replace(cfg, num_epochs=epochs)
        super().__init__(cfg, labelled, dev_cuts, reader, out_dir, step_hook=step_hook,
                         resume=resume, **dist_kw)
        self.machine_sampler = None
        if self.machine_set is not None:
            self.machine_sampler = BucketingBatchSampler(
                self.machine_set.input_lengths(), self.ssl.machine_max_frames or cfg.max_frames, cfg.num_buckets,
                shuffle=True, seed=cfg.seed + MACHINE_SEED_OFFSET, max_batch_size=cfg.max_batch_size)
            log.info("data: %d machine-labelled cuts -> %d chunks (%d scored frames), %d left out",
                     len(self.machine_set.cuts), len(self.machine_set), self.machine_set.scored_frames(),
                     len(self.left_out))
        if self._resumed_ssl is not None:
            self._check_resume(self._resumed_ssl)
        if self.is_main:
            atomic_write_text(self.out_dir / "config.yaml", _to_yaml({"train": cfg.to_dict(),
                                                                      "model": self.model_cfg.to_dict(),
                                                                      "ssl": self.ssl.to_dict()}))
        sch = self.schedule(self.epoch)
        log.info("schedule: mode %s, %d labelled + %d machine batches an epoch, ratio %s, lr x%g labelled, "
                 "x%g machine", self.ssl.mode, sch.n_l, sch.n_m, sch.ratio, sch.config.labelled_lr_mult,
                 sch.config.machine_lr_mult)

    def _consistency_items(self) -> Dict:
        items = super()._consistency_items()
        items["ssl"] = self.ssl.to_dict()
        items["machine_data"] = ([len(self.machine_set), self.machine_set.scored_frames()]
                                 if self.machine_set is not None else None)
        items["pseudo_labels"] = self._labels_meta
        return items

    # ------------------------------------------------------------------ schedule
    def schedule(self, epoch: int) -> Schedule:
        """The epoch's schedule over batch *positions* (``ScheduledBatch.batch`` indexes the epoch's list)."""
        n_l = self.sampler.num_batches(epoch)
        n_m = self.machine_sampler.num_batches(epoch) if self.machine_sampler is not None else 0
        if self.ssl.mode == "supervised":
            cfg = ScheduleConfig("segregated", None, 1.0, 1.0)
        else:
            cfg = ScheduleConfig(self.ssl.mode, self.ssl.ratio, self.ssl.labelled_lr_mult, self.ssl.machine_lr_mult)
        return Schedule(range(n_l), range(n_m), cfg)

    def epoch_batches(self, epoch: int, start: int):
        sch = self.schedule(epoch)
        lists = {LABELLED: (self.train_set, self.sampler.batches(epoch))}
        if self.machine_sampler is not None:
            lists[MACHINE] = (self.machine_set, self.machine_sampler.batches(epoch))
        if self.data_world > 1:
            # each list sharded on its own (rank r: batches r, r+N, ...), then the same schedule over the
            # local lists on every rank: each update is of one kind with one LR multiplier on all ranks
            share = {k: shard_positions(len(lists[k][1]), self.data_rank, self.data_world) for k in lists}
            lists = {k: (ds, [b[i] for i in share[k]]) for k, (ds, b) in lists.items()}
            sch = Schedule(range(len(lists[LABELLED][1])), range(len(lists[MACHINE][1])) if MACHINE in lists
                           else range(0), sch.config)
        done = dict(zip((LABELLED, MACHINE), sch.position(start)))
        todo, n_mine = sch.iter_from(start), len(sch)
        order = {k: lists[k][1][done[k]:] for k in lists}

        def gen():
            iters = {}
            for item in todo:
                ds, batches = lists[item.kind]
                if item.kind not in iters:  # a loader per kind, from where this epoch's schedule stands
                    iters[item.kind] = iter(make_loader(ds, order[item.kind], self.cfg.num_workers,
                                                        self.cfg.seed, epoch, pin_memory=self.device.type == "cuda"))
                batch = next(iters[item.kind])
                want = [ds.cuts[ds.segments[i].cut].id for i in batches[item.batch]]
                if batch["cut_ids"] != want:  # the loader and the schedule must never drift apart
                    raise RuntimeError(f"step {self.step + 1}: {item.kind} batch {item.batch} holds "
                                       f"{batch['cut_ids'][:3]}, the schedule expects {want[:3]}")
                self.current = {"kind": item.kind, "position": item.step, "index": item.batch,
                                "lr_mult": item.lr_mult, "cut_ids": list(batch["cut_ids"]),
                                "starts": batch["starts"].tolist()}
                yield batch, item.lr_mult

        return n_mine, gen()

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> Dict:
        st = super()._state()
        sch = self.schedule(self.epoch)
        st["ssl"] = {**self.ssl.to_dict(), "position": self.batch_in_epoch, "epoch": self.epoch,
                     "labelled_batches": sch.n_l, "machine_batches": sch.n_m, "ratio_used": str(sch.ratio)}
        return st

    def _load_extra_state(self, ck: Dict) -> None:
        self._resumed_ssl = ck.get("ssl") or {"mode": "<none: a plain train_nnet checkpoint>"}

    def _check_resume(self, saved: Dict) -> None:
        now = self.ssl.to_dict()
        diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in ("mode", "ratio", "labelled_lr_mult",
                                                                             "machine_lr_mult", "machine_max_frames")
                if saved.get(k) != now[k]]
        if not diff and saved.get("epoch") == self.epoch:
            sch = self.schedule(self.epoch)
            for k, v in (("labelled_batches", sch.n_l), ("machine_batches", sch.n_m)):
                if saved.get(k) != v:
                    diff.append(f"{k} of epoch {self.epoch}: checkpoint {saved.get(k)}, now {v} (other data?)")
        if diff:
            raise ValueError(f"{self.resumed_from}: cannot resume this schedule: " + "; ".join(diff)
                             + "; use a new --out-dir")
        log.info("resuming the %s schedule at update %d of epoch %d", self.ssl.mode, self.batch_in_epoch,
                 self.epoch + 1)


def train_student(cfg: TrainConfig, ssl: SslConfig, labelled_cuts, dev_cuts, cmvn, out_dir: PathLike,
                  unlabelled_cuts=None, pseudo_dir: Optional[PathLike] = None, tree: Optional[PathLike] = None,
                  step_hook: Optional[Callable[[int], None]] = None, resume: bool = True, **dist_kw) -> TrainResult:
    """Train (or resume) a student in ``out_dir`` (module doc). ``labelled_cuts``: a manifest, a CutSet or
    a list of them (concatenated); ``pseudo_dir``: the shards and ``index.json`` of stage 10; ``tree``: the
    student's senone tree, whose checksum the labels must carry."""
    from asrkit.features.reader import FeatureReader

    labels = None
    if ssl.mode != "supervised":
        if pseudo_dir is None or unlabelled_cuts is None:
            raise ValueError(f"mode {ssl.mode} needs unlabelled cuts and a pseudo-label dir")
        labels = open_pseudo_labels(pseudo_dir, cfg.num_senones, tree)
    reader = FeatureReader(cmvn, stack=True)
    return SslTrainer(cfg, labelled_cuts, unlabelled_cuts, dev_cuts, reader, out_dir, ssl, labels,
                      step_hook=step_hook, resume=resume, **dist_kw).run()
