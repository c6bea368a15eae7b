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
* **Order** (:class:`asrkit.pseudo.schedule.RunSchedule`, one schedule over the whole run): each
  epoch has its two batch lists, each made by its own :class:`BucketingBatchSampler` from
  ``(seed, epoch)`` (the machine one from ``(seed + 1, epoch)``). ``interleaved``: in each epoch,
  ``ratio`` machine batches per labelled batch (default: spread so that both lists end together);
  ``segregated`` (the article's baseline): the same batches as the interleaved run, every machine one of
  the whole run first, then every labelled one; ``supervised``: labelled batches only (the baseline;
  also the oracle student, trained on the labelled cuts plus the unlabelled ones with targets from their
  true transcripts). Interleaved and segregated see the same batches, the same number of updates and the
  same learning-rate multipliers; only the order differs. The run's epochs (validation, ``best.pt``,
  ``epoch-<n>.pt``) end at the same updates in both, so with a step-based scheduler (``warmup``,
  ``constant``) each update has the same base LR in both (``newbob`` follows each run's own dev loss).
* **Length**: ``num_epochs`` passes over both lists, or a budget of updates (``TrainConfig.max_updates``):
  the run stops after exactly that many, mid-epoch if need be (validated and checkpointed there as at an
  epoch end). ``equal_updates`` sets the budget to the updates of the supervised student: ``num_epochs``
  epochs of the same sampler and seed over the first labelled manifest (train_sup), counted exactly
  (:func:`supervised_updates`, nothing trained or read but the manifest); under torchrun, each rank's
  share of them. Every student of stages 9 and 11-14 then makes exactly as many updates.
* **Learning rate**: the scheduler's LR (per update, as in :mod:`asrkit.nnet.train`) times
  ``labelled_lr_mult`` on labelled batches (default 2.0) and ``machine_lr_mult`` (1.0) on machine
  batches, in every mode: the supervised student's batches (all labelled) train at the same multiplier
  as the semi-supervised students' labelled ones, so a gain cannot be a learning-rate effect
  (``labelled_lr_mult=1.0`` gives the plain training of earlier versions).
* **Resume**: the schedule position is the checkpoint's ``(epoch, batch_in_epoch)``; the checkpoint also
  holds the ``ssl`` settings, the budget and the run's list sizes, and a resume under another mode,
  ratio, budget or data is refused. On CPU a resumed run gives the same parameters as an uninterrupted one.
* **Logs**: loss and frame accuracy per kind in the epoch lines, ``history.jsonl``
  (``train_loss_labelled``, ``train_acc_labelled``, ``train_loss_machine``, ``train_acc_machine``)
  and TensorBoard (``train_labelled/*``, ``train_machine/*``); the machine "accuracy" is the agreement
  of the student's argmax with the teacher's top-1.

* **Distributed** (torchrun, ``--sync``): each batch list is sharded on its own (rank r takes batches r,
  r+N, ... of the same seeded order, padded by repeating the head so that every rank has as many), and
  the run's schedule is made of the local lists, the same on every rank: each update is of one kind and one
  learning-rate multiplier on all ranks (different multipliers would make ddp/gtc replicas diverge).
  ``batch_in_epoch`` counts this rank's updates.

* **Loader** (``TrainConfig.loader``): ``manifests`` (the default, all of the above); ``shards``: each kind's
  batches come from sequential training shards (``shards={"labelled": dir, "machine": dir}``,
  :class:`asrkit.nnet.shard_loader.ShardStream`: a streaming duration-bucketing sampler over a bounded
  buffer, memory flat in the number of cuts, other batches than the default), ordered by the same
  schedule; each stream's ``(epoch, batches served)`` and what fixes its draws are saved in the
  checkpoint (``shard_streams``) and replayed on resume. One process, no DataLoader workers.

With ``num_workers > 0`` each kind has its own DataLoader (created when the schedule first asks for
that kind in an epoch), so interleaved training runs up to twice ``num_workers`` worker processes.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from asrkit.data.cutstore import as_sources
from asrkit.nnet.dataset import (ChunkDataset, LabelFrames, check_cut, check_cuts, load_cuts, make_loader,
                                 make_segments, reader_with_norm)
from asrkit.nnet.sampler import BucketingBatchSampler, shard_positions
from asrkit.nnet.train import Trainer, TrainConfig, TrainResult, source_names
from asrkit.pseudo.schedule import LABELLED, MACHINE, RunSchedule, ScheduleConfig, epoch_sizes_for

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
    # a budget of exactly as many updates as the supervised student makes in num_epochs epochs over the
    # first labelled manifest (supervised_updates), over epochs that pass over all the data
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
    have = LabelFrames(labels)
    kept, missing = [], []
    for c in cuts:
        if c.id in have:
            kept.append(c)
        else:
            missing.append(c.id)
    log_left_out(missing, len(kept), labels)
    return kept, missing


def machine_dataset(unlabelled_cuts, labels, reader, cfg: TrainConfig) -> Tuple[ChunkDataset, List[str]]:
    """The machine-labelled :class:`ChunkDataset` of the unlabelled cuts that have pseudo-labels, and
    the ids of those left out (logged). Manifests are streamed (:meth:`ChunkDataset.from_cuts`)."""
    args = (reader, cfg.chunk_size, cfg.left_context, cfg.effective_right_context, cfg.min_chunk, "soft",
            cfg.num_senones)
    if as_sources(unlabelled_cuts) is None:
        kept, missing = select_labelled(unlabelled_cuts, labels)
        if not kept:
            raise ValueError("no unlabelled cut has pseudo-labels (wrong --pseudo-dir or cuts?)")
        return ChunkDataset.from_cuts(kept, *args, labels=labels), missing
    have, missing = LabelFrames(labels), []

    def keep(cut_id: str) -> bool:
        if cut_id in have:
            return True
        missing.append(cut_id)
        return False

    ds = ChunkDataset.from_cuts(unlabelled_cuts, *args, labels=labels, keep=keep)
    log_left_out(missing, len(ds.cuts), labels)
    if not len(ds.cuts):
        raise ValueError("no unlabelled cut has pseudo-labels (wrong --pseudo-dir or cuts?)")
    return ds, missing


def log_left_out(missing: Sequence[str], num_kept: int, labels) -> None:
    """Log the unlabelled cuts without pseudo-labels (with the index's reasons) and unused labels."""
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
                    num_kept + len(missing), n_f, n_s, len(missing) - n_f - n_s, ", ".join(missing[:5]))
    extra = len(labels) - num_kept
    if extra:
        log.info("pseudo-labels: %d labelled utterances are not in the unlabelled cuts given (unused)", extra)


def _sources(sources: Union[PathLike, Sequence]) -> list:
    """A manifest, a CutSet, a list of cuts, or a list of those -> a list of sources."""
    sources = list(sources) if not (isinstance(sources, (str, Path)) or hasattr(sources, "to_eager")) else [sources]
    if sources and not all(isinstance(x, (str, Path)) or hasattr(x, "to_eager") or isinstance(x, (list, tuple))
                           for x in sources):
        sources = [sources]  # one list of cuts
    return sources


def supervised_updates(cuts, cfg: TrainConfig, world_size: int = 1, rank: int = 0) -> int:
    """The updates the supervised student makes on ``cuts`` (its labelled manifest): ``cfg.num_epochs``
    epochs of the :class:`BucketingBatchSampler` it trains with (chunking, ``max_frames``, buckets,
    ``seed``), each rank's share under torchrun. Reads the manifest only, streamed (lengths from the cuts)."""
    return updates_of_lengths(check_cuts(cuts, "hard"), cfg, world_size, rank)


def scan_labelled(cuts) -> Tuple[List[int], float]:
    """One streaming pass over labelled cuts: each one's stacked length (checked as for training, the
    lengths :func:`supervised_updates` counts from) and their total duration in seconds."""
    lengths, seconds = [], 0.0
    for c in cuts:
        seconds += c.duration
        lengths.append(check_cut(c, "hard"))
    return lengths, seconds


def updates_of_lengths(lengths: Sequence[int], cfg: TrainConfig, world_size: int = 1, rank: int = 0) -> int:
    """:func:`supervised_updates` from the cuts' stacked lengths."""
    segs = make_segments(lengths, cfg.chunk_size, cfg.left_context, cfg.effective_right_context, cfg.min_chunk)
    sampler = BucketingBatchSampler([sg.input_len for sg in segs], cfg.max_frames, cfg.num_buckets, shuffle=True,
                                    seed=cfg.seed, max_batch_size=cfg.max_batch_size)
    return sum(len(shard_positions(sampler.num_batches(e), rank, world_size)) for e in range(cfg.num_epochs))


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
    """:class:`Trainer` over two batch lists ordered by a :class:`RunSchedule` (module doc).

    ``current`` holds what the last update trained on (``kind``, ``cut_ids``, ``starts``, ``lr_mult``,
    ``position``): a ``step_hook`` can read it together with ``opt.param_groups``."""

    def __init__(self, cfg: TrainConfig, labelled_cuts, unlabelled_cuts, dev_cuts, reader, out_dir: PathLike,
                 ssl: Optional[SslConfig] = None, labels=None, step_hook: Optional[Callable[[int], None]] = None,
                 resume: bool = True, shards: Optional[Dict] = None, **dist_kw):
        self.ssl = ssl or SslConfig()
        self._unlabelled_source = unlabelled_cuts if self.ssl.mode != "supervised" else None
        self.kind_names = dict(KIND_NAMES)
        self.current: Optional[Dict] = None
        self._resumed_ssl: Optional[Dict] = None
        self._resumed_streams: Optional[Dict] = None
        self.machine_set: Optional[ChunkDataset] = None
        self.left_out: List[str] = []
        self.streams: Optional[Dict] = None  # loader 'shards': {kind: ShardStream}
        if cfg.loader == "shards":  # the training shards replace the manifests (and the labels) of training
            if cfg.cmvn_mode == "speaker":
                raise ValueError("cmvn_mode 'speaker' is not available with loader 'shards' (global or utterance)")
            need_machine = self.ssl.mode != "supervised"
            if not shards or not shards.get("labelled") or (need_machine and not shards.get("machine")):
                raise ValueError(f"loader 'shards', mode {self.ssl.mode}: needs the labelled"
                                 f"{'' if self.ssl.mode == 'supervised' else ' and the machine-labelled'} training "
                                 f"shards (--labelled-shards, --machine-shards; asrkit.bin.write_train_shards)")
            unlabelled_cuts = labels = None
            reader = reader_with_norm(reader, cfg.cmvn_mode, dev_cuts)
        else:
            reader = reader_with_norm(reader, cfg.cmvn_mode, *_sources(labelled_cuts),  # speaker stats of every set
                                      unlabelled_cuts if self.ssl.mode != "supervised" else None, dev_cuts)
        if self.ssl.mode != "supervised" and cfg.loader != "shards":
            if labels is None or unlabelled_cuts is None:
                raise ValueError(f"mode {self.ssl.mode} needs unlabelled cuts and their pseudo-labels")
            if labels.num_senones != cfg.num_senones:  # the reader checks it too when given num_senones
                raise ValueError(f"pseudo-labels have num_senones={labels.num_senones}, the student "
                                 f"{cfg.num_senones}")
            self.machine_set, self.left_out = machine_dataset(load_cuts(unlabelled_cuts), labels, reader, cfg)
        self._labels_meta = None
        if labels is not None:
            idx = getattr(labels, "index", {}) or {}
            self._labels_meta = {k: idx.get(k) for k in ("num_senones", "tree_checksum", "k", "num_shards", "teacher")}
        sources = _sources(labelled_cuts) if labelled_cuts is not None else []
        if cfg.loader == "shards":
            first, labelled = (load_cuts(sources[0]) if sources else None), None
        elif all(as_sources(src) is not None for src in sources):  # manifests: streamed into a store
            labelled = [p for src in sources for p in as_sources(src)]
            first = load_cuts(labelled[0])  # lazy: read once below (equal updates), once by the dataset
        else:
            first = list(load_cuts(sources[0]))  # read once: concatenated below, and the reference of equal updates
            labelled = concat_cuts([first, *sources[1:]])
        first_lengths: List[int] = []
        if self.ssl.equal_updates:  # the supervised student's batches are counted from these lengths
            if first is None:
                raise ValueError("--equal-updates counts the supervised student's updates on the first "
                                 "--labelled-cuts manifest: give it with the shards")
            first_lengths, seconds = scan_labelled(first)
            if seconds <= 0:
                raise ValueError(f"--equal-updates: the first labelled cuts ({sources[0]}) hold no audio")
        super().__init__(cfg, labelled, dev_cuts, reader, out_dir, step_hook=step_hook,
                         resume=resume, **dist_kw)
        self.machine_sampler = None
        if cfg.loader == "shards":
            self._open_streams(shards, reader)
        if self.machine_set is not None:
            self.machine_sampler = BucketingBatchSampler(
                self.machine_set.input_lengths(), self.ssl.machine_max_frames or cfg.max_frames, cfg.num_buckets,
                shuffle=True, seed=cfg.seed + MACHINE_SEED_OFFSET, max_batch_size=cfg.max_batch_size)
            log.info("data: %d machine-labelled cuts -> %d chunks (%d scored frames), %d left out",
                     len(self.machine_set.cuts), len(self.machine_set), self.machine_set.scored_frames(),
                     len(self.left_out))
        budget = cfg.max_updates or None
        if self.ssl.equal_updates:
            budget = updates_of_lengths(first_lengths, cfg, self._share_world(), 0)  # every share is as long
            if cfg.max_updates and cfg.max_updates != budget:
                log.warning("--equal-updates: max_updates %d replaced by the supervised student's %d updates",
                            cfg.max_updates, budget)
            log.info("equal updates: a budget of %d updates, as the supervised student's %d epochs over the first "
                     "labelled manifest (%s)%s", budget, cfg.num_epochs, sources[0] if isinstance(
                         sources[0], (str, Path)) else "given cuts",
                     f", one worker's share of {self._share_world()}" if self._share_world() > 1 else "")
        self._local_batches: Dict[Tuple[str, int], list] = {}
        self.run_schedule = RunSchedule(epoch_sizes_for(self._epoch_size, cfg.num_epochs, budget),
                                        self._schedule_config(), budget)
        # the loop's epochs are the run's; its budget the run's length (what a budget of 0 means: none)
        self.cfg = cfg = replace(cfg, num_epochs=self.run_schedule.num_epochs, max_updates=budget or 0)
        if self._resumed_ssl is not None:
            self._check_resume(self._resumed_ssl)
        self.write_config()  # the run's epochs and budget
        run = self.run_schedule
        n_l, n_m = map(sum, zip(*run.counts)) if run.counts else (0, 0)
        log.info("schedule: mode %s over the whole run: %d updates (%d labelled + %d machine batches) in %d "
                 "epochs%s, ratio %s, lr x%g labelled, x%g machine", self.ssl.mode, len(run), n_l, n_m,
                 run.num_epochs, f" (a budget of {run.budget})" if run.budget else "",
                 self.ssl.ratio or "proportional", run.config.labelled_lr_mult, run.config.machine_lr_mult)

    def config_record(self) -> Dict:
        rec = super().config_record()
        rec["data"]["unlabelled_cuts"] = source_names(self._unlabelled_source)
        return {**rec, "ssl": self.ssl.to_dict()}

    def consistency_items(self) -> Dict:
        items = super().consistency_items()
        items["ssl"] = self.ssl.to_dict()
        items["machine_data"] = ([len(self.machine_set), self.machine_set.scored_frames()]
                                 if self.machine_set is not None else None)
        if self.streams is not None:
            items["shards"] = {k: st.set.index_checksum for k, st in self.streams.items()}
        items["pseudo_labels"] = self._labels_meta
        return items

    # ------------------------------------------------------------------ schedule
    def _schedule_config(self) -> ScheduleConfig:
        mode = "interleaved" if self.ssl.mode == "supervised" else self.ssl.mode  # no machine batches: one order
        return ScheduleConfig(mode, self.ssl.ratio, self.ssl.labelled_lr_mult, self.ssl.machine_lr_mult)

    def _share_world(self) -> int:
        """How many shares the data is split into: the torchrun world, or the simulated workers."""
        return self.sim_workers or self.world_size

    def _batches(self, kind: str, epoch: int) -> list:
        """This worker's batch list of ``kind`` in ``epoch``: the sampler's seeded order, under torchrun
        (or simulated workers: ``data_rank`` of ``data_world``) sharded on its own (rank r: batches r,
        r+N, ...), so every update is of one kind with one LR multiplier on all workers."""
        key = (kind, epoch, self.data_rank, self.data_world)
        if key not in self._local_batches:
            sampler = self.sampler if kind == LABELLED else self.machine_sampler
            b = sampler.batches(epoch) if sampler is not None else []
            if self.data_world > 1 and b:
                b = [b[i] for i in shard_positions(len(b), self.data_rank, self.data_world)]
            if len(self._local_batches) > 8 * max(1, self.data_world):  # a few epochs' lists at a time
                self._local_batches.clear()
            self._local_batches[key] = b
        return self._local_batches[key]

    def _epoch_size(self, epoch: int) -> Tuple[int, int]:
        """One worker's (labelled, machine) batches in ``epoch`` (shard_positions pads: all as long)."""
        if self.streams is not None:
            return tuple(self.streams[k].num_batches(epoch) if k in self.streams else 0 for k in (LABELLED, MACHINE))
        world = self._share_world()
        sizes = []
        for sampler in (self.sampler, self.machine_sampler):
            n = sampler.num_batches(epoch) if sampler is not None else 0
            sizes.append(len(shard_positions(n, 0, world)) if world > 1 and n else n)
        return sizes[0], sizes[1]

    def epoch_batches(self, epoch: int, start: int):
        if self.streams is not None:
            return self._stream_epoch_batches(epoch, start)
        items = list(self.run_schedule.epoch_items(epoch, start))
        sets = {LABELLED: self.train_set, MACHINE: self.machine_set}
        # each kind's batches in the order this epoch of the run consumes them (a segregated epoch may take
        # machine batches of several of the samplers' epochs): one loader per kind over them
        order = {k: [self._batches(k, it.epoch)[it.batch] for it in items if it.kind == k] for k in sets}

        def gen():
            iters, used = {}, {LABELLED: 0, MACHINE: 0}
            for item in items:
                ds = sets[item.kind]
                if item.kind not in iters:  # a loader per kind, from where this epoch's schedule stands
                    iters[item.kind] = iter(make_loader(ds, order[item.kind], self.cfg.num_workers,
                                                        self.cfg.seed, epoch, pin_memory=self.device.type == "cuda"))
                batch = next(iters[item.kind])
                want = [ds.cut_id(ds.segments[i].cut) for i in order[item.kind][used[item.kind]]]
                used[item.kind] += 1
                if batch["cut_ids"] != want:  # the loader and the schedule must never drift apart
                    raise RuntimeError(f"step {self.step + 1}: {item.kind} batch {item.batch} of epoch "
                                       f"{item.epoch + 1} holds {batch['cut_ids'][:3]}, the schedule expects "
                                       f"{want[:3]}")
                self.current = {"kind": item.kind, "position": item.step, "epoch": item.epoch, "index": item.batch,
                                "lr_mult": item.lr_mult, "cut_ids": list(batch["cut_ids"]),
                                "starts": batch["starts"].tolist()}
                yield batch, item.lr_mult

        return self.run_schedule.epoch_len(epoch), gen()

    # ------------------------------------------------------------------ the shard loader
    def _open_streams(self, shards: Dict, reader) -> None:
        """loader 'shards': a :class:`ShardStream` per kind, checked against the student's inventory."""
        from asrkit.nnet.shard_loader import ShardStream
        from asrkit.pseudo.shards import LabelMismatchError

        if self.data_world > 1 or self.sim_workers:  # each rank would read every shard: not built
            raise ValueError("loader 'shards' trains in one process (shards per rank are not built): use the "
                             "manifests loader under torchrun or --simulate-workers")
        cfg = self.cfg
        common = dict(chunk_size=cfg.chunk_size, left_context=cfg.left_context,
                      right_context=cfg.effective_right_context, min_chunk=cfg.min_chunk,
                      buffer_size=cfg.shuffle_buffer, num_buckets=cfg.num_buckets, max_batch_size=cfg.max_batch_size,
                      num_senones=cfg.num_senones, verify=shards.get("verify", True))
        self.streams = {LABELLED: ShardStream(shards["labelled"], reader, max_frames=cfg.max_frames, seed=cfg.seed,
                                              kind="hard", **common)}
        if self.ssl.mode != "supervised":
            m = ShardStream(shards["machine"], reader, max_frames=self.ssl.machine_max_frames or cfg.max_frames,
                            seed=cfg.seed + MACHINE_SEED_OFFSET, kind="soft", **common)
            idx, where = m.set.index, m.set.root / "index.json"
            if int(idx.get("num_senones") or -1) != cfg.num_senones:
                raise LabelMismatchError(f"{where}: labels have num_senones={idx.get('num_senones')} but the "
                                         f"student {cfg.num_senones}")
            want = shards.get("tree_checksum")
            if want is not None and idx.get("tree_checksum") != want:
                raise LabelMismatchError(f"{where}: labels were made with senone tree {idx.get('tree_checksum')} but "
                                         f"the trainer's tree is {want}: relabel with the matching teacher")
            self.streams[MACHINE] = m
            self._labels_meta = {k: idx.get(k) for k in ("num_senones", "tree_checksum", "k")}
            log.info("data: %d machine-labelled cuts in %d training shards (%s), %d left out when written",
                     len(m.set), m.set.num_shards, m.set.root, int(idx.get("left_out") or 0))
        lab = self.streams[LABELLED].set
        log.info("data: %d labelled cuts in %d training shards (%s); a streaming bucketing buffer of %d chunks",
                 len(lab), lab.num_shards, lab.root, cfg.shuffle_buffer)

    def _stream_positions(self) -> Dict[str, List[int]]:
        """Each kind's next batch ``[sampler epoch, batch]`` from where the run stands (the schedule's);
        a kind with no batch left has none."""
        pos: Dict[str, List[int]] = {}
        e, b = self.epoch, self.batch_in_epoch
        while len(pos) < len(self.streams) and e < self.run_schedule.num_epochs:
            for it in self.run_schedule.epoch_items(e, b):
                if it.kind in self.streams and it.kind not in pos:
                    pos[it.kind] = [it.epoch, it.batch]
                    if len(pos) == len(self.streams):
                        break
            e, b = e + 1, 0
        return pos

    def _stream_states(self) -> Dict[str, Dict]:
        pos = self._stream_positions()
        return {k: st.state(*pos.get(k, (-1, -1))) for k, st in self.streams.items()}

    def _stream_resume_diff(self, saved: Dict) -> List[str]:
        """Why the checkpoint's streams cannot be replayed here (empty: they can, to the same batches)."""
        if self.streams is None:
            return ["loader: the checkpoint was trained with loader 'shards', now 'manifests'"] if saved else []
        if not saved:
            return ["loader: the checkpoint was trained with loader 'manifests', now 'shards'"]
        diff, now = [], self._stream_states()
        for kind in sorted(set(saved) | set(now)):
            a, b = saved.get(kind, {}), now.get(kind, {})
            diff += [f"{kind} stream {k}: checkpoint {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k)]
        return diff

    def _stream_epoch_batches(self, epoch: int, start: int):
        """``epoch_batches`` of loader 'shards': each kind's stream from the schedule's position on. A
        stream serves its batches in order only, which both modes' schedules respect."""
        run = self.run_schedule

        def gen():
            iters, nxt = {}, {}
            for item in run.epoch_items(epoch, start):
                st = self.streams[item.kind]
                if item.kind not in iters:
                    iters[item.kind] = st.batches_from(item.epoch, item.batch)
                    nxt[item.kind] = (item.epoch, item.batch)
                if (item.epoch, item.batch) != nxt[item.kind]:
                    raise RuntimeError(f"step {self.step + 1}: the schedule asks for {item.kind} batch {item.batch} "
                                       f"of epoch {item.epoch + 1}, the stream serves {nxt[item.kind]}")
                batch = next(iters[item.kind])
                e, b = item.epoch, item.batch + 1
                nxt[item.kind] = (e, b) if b < st.num_batches(e) else (e + 1, 0)
                self.current = {"kind": item.kind, "position": item.step, "epoch": item.epoch, "index": item.batch,
                                "lr_mult": item.lr_mult, "cut_ids": list(batch["cut_ids"]),
                                "starts": batch["starts"].tolist()}
                yield batch, item.lr_mult

        return run.epoch_len(epoch), gen()

    # ------------------------------------------------------------------ checkpoints
    def extra_state(self) -> Dict:
        run = self.run_schedule
        state = {"ssl": {**self.ssl.to_dict(), "position": self.batch_in_epoch, "epoch": self.epoch,
                         "budget": run.budget, "run_epochs": [[e.n_l, e.n_m] for e in run.epochs],
                         "run_lengths": list(run.lengths)}}
        if self.streams is not None:
            state["shard_streams"] = self._stream_states()
        return state

    def load_extra_state(self, ck: Dict) -> None:
        self._resumed_ssl = ck.get("ssl") or {"mode": "<none: a plain train_nnet checkpoint>"}
        self._resumed_streams = ck.get("shard_streams") or {}

    def _check_resume(self, saved: Dict) -> None:
        now = self.ssl.to_dict()
        diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in ("mode", "ratio", "labelled_lr_mult",
                                                                             "machine_lr_mult", "machine_max_frames")
                if saved.get(k) != now[k]]
        if not diff and self._resumed_streams is not None:  # the loader first: other loaders, other batch counts
            diff += self._stream_resume_diff(self._resumed_streams)
        run = self.run_schedule
        if not diff and "budget" in saved and saved["budget"] != run.budget:
            diff.append(f"budget: checkpoint {saved['budget']} updates, now {run.budget}")
        if not diff and "run_epochs" in saved:
            now_sizes = [[e.n_l, e.n_m] for e in run.epochs]
            if saved["run_epochs"] != now_sizes or saved.get("run_lengths") != list(run.lengths):
                diff.append(f"the run's (labelled, machine) batches per epoch: checkpoint {saved['run_epochs']}, "
                            f"now {now_sizes} (other data or settings?)")
        if diff:
            raise ValueError(f"{self.resumed_from}: cannot resume this schedule: " + "; ".join(diff)
                             + "; use a new --out-dir")
        log.info("resuming the %s schedule at update %d of epoch %d", self.ssl.mode, self.batch_in_epoch,
                 self.epoch + 1)


def train_student(cfg: TrainConfig, ssl: SslConfig, labelled_cuts, dev_cuts, cmvn, out_dir: PathLike,
                  unlabelled_cuts=None, pseudo_dir: Optional[PathLike] = None, tree: Optional[PathLike] = None,
                  step_hook: Optional[Callable[[int], None]] = None, resume: bool = True,
                  shards: Optional[Dict] = None, **dist_kw) -> TrainResult:
    """Train (or resume) a student in ``out_dir`` (module doc). ``labelled_cuts``: a manifest, a CutSet or
    a list of them (concatenated); ``pseudo_dir``: the shards and ``index.json`` of stage 10; ``tree``: the
    student's senone tree, whose checksum the labels must carry. ``cfg.loader == "shards"``: ``shards``
    ``{"labelled": dir, "machine": dir}`` of training shards instead (``labelled_cuts`` only for
    ``equal_updates``)."""
    from asrkit.features.reader import FeatureReader

    labels = None
    if cfg.loader == "shards":
        from asrkit.pseudo.shards import tree_checksum

        shards = {**(shards or {}), "tree_checksum": tree_checksum(tree) if tree is not None else None}
    elif ssl.mode != "supervised":
        if pseudo_dir is None or unlabelled_cuts is None:
            raise ValueError(f"mode {ssl.mode} needs unlabelled cuts and a pseudo-label dir")
        labels = open_pseudo_labels(pseudo_dir, cfg.num_senones, tree)
    reader = FeatureReader(cmvn, stack=True)
    return SslTrainer(cfg, labelled_cuts, unlabelled_cuts, dev_cuts, reader, out_dir, ssl, labels,
                      step_hook=step_hook, resume=resume, shards=shards, **dist_kw).run()
