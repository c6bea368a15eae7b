"""The training loop: one explicit loop (icefall-style), no framework.

``train(cfg, train_cuts, dev_cuts, cmvn, out_dir)``:

* cross-entropy on hard senone targets (the loss is dispatched on the batch kind: see ``losses``);
* Adam (default) or SGD with momentum; learning rate ``warmup`` (linear warm-up, then exponential
  decay with a half-life in steps), ``newbob`` (constant; once the relative dev-loss improvement of an
  epoch falls below ``newbob_start``, halve every epoch; stop once it falls below ``newbob_stop``
  after halving started) or ``constant``; gradient-norm clipping;
* mixed precision on CUDA (``torch.autocast`` float16 + ``GradScaler``; bfloat16 without a scaler on
  request), disabled on CPU; device ``auto``: CUDA when available;
* checkpoints every ``checkpoint_every`` steps (``checkpoint-<step>.pt``, the newest ``keep_last``
  kept) and at each epoch end (``epoch-<n>.pt``), with model, optimiser, scheduler, scaler, epoch,
  batch position and RNG states, written atomically; a run restarted in the same ``out_dir`` resumes
  from the newest one and, on CPU with ``num_workers`` any value, gives the same parameters as an
  uninterrupted run (the batch order is a function of ``(seed, epoch)`` only);
* a budget of updates (``max_updates``): exactly that many updates, as many epochs as that takes, the
  last one cut where the budget ends and closed there as a whole epoch (validation, ``best.pt``,
  ``history.jsonl``, ``epoch-<n>.pt``), so a resumed run ends at the same update;
* ``best.pt``: the model with the best dev frame accuracy; TensorBoard scalars (``tensorboard/``);
  tqdm progress; one summary line per epoch (also in ``history.jsonl``);
* a non-finite loss raises :class:`NonFiniteLossError` with the step, the batch and its cut ids,
  before anything is written, so the last good checkpoint stays as it was;
* a checkpoint of another model configuration is refused (:class:`ConfigMismatchError`, naming the
  fields that differ).

Extension points (used by :mod:`asrkit.nnet.ssl`, the semi-supervised student), all public:
``epoch_batches`` gives an epoch's batches with a learning-rate multiplier each, ``train_step(...,
lr_mult)`` scales the scheduler's LR for one update, ``kind_names`` turns on per-kind training
statistics (loss and frame accuracy per batch kind in the log, ``history.jsonl`` and TensorBoard),
``extra_state`` / ``load_extra_state`` add to and read back from the checkpoint, ``consistency_items``
what every rank must agree on, ``config_record`` / ``write_config`` the run's ``config.yaml``;
``step_hook(step)`` is called after every update (tests use it to stop a run or disturb a step).

Distributed bookkeeping (rank, cross-rank checks, the checkpoint's ``dist`` section, ``comm.json``) is
:class:`asrkit.distributed.rank_state.RankState`; statistics are :mod:`asrkit.nnet.metrics` values.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch
import yaml
from tqdm import tqdm

from asrkit.distributed.launch import check_consistency, init_distributed
from asrkit.distributed.rank_state import RankState, SyncDivergedError, comm_json_text
from asrkit.distributed.sparse_adam import SparseGradAdam
from asrkit.distributed.sync import SyncConfig, make_sync
from asrkit.features.reader import FeatureReader
from asrkit.nnet.checkpoint import (ConfigMismatchError, check_model_config, latest_checkpoint, list_checkpoints,
                                    load_checkpoint,
                                    prune_checkpoints, rng_state, save_checkpoint, seed_everything, set_rng_state)
from asrkit.nnet.dataset import ChunkDataset, batch_to, load_cuts, make_loader, reader_with_norm
from asrkit.nnet.losses import compute_loss
from asrkit.nnet.lr_schedule import LrScheduler
from asrkit.nnet.metrics import Meter, StepStats, Totals
from asrkit.nnet.models import LstmAcousticModel, build_model
from asrkit.nnet.sampler import BucketingBatchSampler, shard_positions
from asrkit.nnet.train_config import TrainConfig, model_config_of
from asrkit.nnet.specaug import make_specaug
from asrkit.utils.atomic import atomic_write_text, mark_done

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "ConfigMismatchError", "LrScheduler", "train",
           "Trainer", "model_config_of", "pick_device", "mark_finished", "SyncDivergedError", "StepStats"]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class NonFiniteLossError(RuntimeError):
    def __init__(self, step: int, epoch: int, batch: int, cut_ids: List[str], what: str = "loss"):
        shown = ", ".join(cut_ids[:20]) + (f", ... ({len(cut_ids)} cuts)" if len(cut_ids) > 20 else "")
        super().__init__(f"non-finite {what} at step {step} (epoch {epoch}, batch {batch}); cuts: {shown}; "
                         f"training stopped, the last checkpoint written before it is intact")
        self.step, self.epoch, self.batch, self.cut_ids = step, epoch, batch, list(cut_ids)


def mark_finished(res: "TrainResult") -> None:
    """The ``.best.pt.done`` marker a recipe tests to skip a finished network (rank 0 calls it)."""
    best = Path(res.out_dir) / "best.pt"
    if res.stopped in ("done", "newbob") and best.exists():
        mark_done(best)


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    epoch: int  # epochs completed
    best_dev_acc: float
    history: List[Dict] = field(default_factory=list)
    stopped: str = "done"  # done | max_steps | newbob


def _amp_settings(cfg: TrainConfig, device: torch.device):
    on = cfg.amp == "true" or (cfg.amp == "auto" and device.type == "cuda")
    if on and device.type != "cuda":
        log.warning("mixed precision requested on %s: disabled (CUDA only)", device)
        on = False
    dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
    return on, dtype


class Trainer:
    """Holds the state of one run; :func:`train` is the convenient entry.

    Distributed (module doc of :mod:`asrkit.distributed.sync`): under torchrun (WORLD_SIZE set) or with a ``sync``
    config, each rank trains on positions r, r+N, ... of every epoch's seeded batch order (padded to a
    multiple of N by repeating its head, so every rank takes the same number of steps), the synchroniser
    (``ddp`` by default under torchrun) runs around each optimiser step, evaluation and saved models use
    ``sync.eval_weights()`` (BMUF: the filtered model W_g), and rank 0 alone writes checkpoints, logs,
    TensorBoard and ``comm.json``. A checkpoint also holds the sync state and each rank's own state
    (RNG, communication counters; GTC residuals; for bmuf/ma the local weights and optimiser) so a
    restart with the same world size resumes exactly.
    """

    def __init__(self, cfg: TrainConfig, train_cuts, dev_cuts, reader, out_dir: Union[str, Path],
                 step_hook: Optional[Callable[[int], None]] = None, resume: bool = True, sync=None,
                 consistency: Optional[Dict[str, Any]] = None, check_sync_every: int = 0,
                 dist_backend: str = "auto"):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step_hook = step_hook
        self.model_cfg = model_config_of(cfg)
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        self.device = pick_device(cfg.device)
        # distributed: a world of one (nothing initialised) unless torchrun set WORLD_SIZE
        self.dist_info = init_distributed(dist_backend)
        self.ranks = RankState(self.dist_info.rank, self.dist_info.world_size)
        self.rank, self.world_size, self.is_main = self.ranks.rank, self.ranks.world_size, self.ranks.is_main
        # whose share of the batches epoch_batches gives: this rank's, or a simulated worker's
        self.data_rank, self.data_world = self.rank, self.world_size
        if self.dist_info.device.startswith("cuda") and cfg.device in ("auto", "cuda"):
            self.device = torch.device(self.dist_info.device)
        if sync is None and self.world_size > 1:
            sync = SyncConfig(mode="ddp")
            log.info("%d processes and no sync mode given: dense gradient all-reduce (ddp)", self.world_size)
        self.sync_cfg = sync
        self.sync = None
        self.sim_workers = sync.simulate_workers if sync is not None else 0
        if self.sim_workers and self.world_size > 1:
            raise ValueError(f"--simulate-workers runs {self.sim_workers} virtual workers in one process: "
                             f"launch it without torchrun (world size {self.world_size})")
        if self.sim_workers > 1 and cfg.num_workers:
            log.info("simulated workers: batches are loaded in the main process (num_workers 0)")
            cfg.num_workers = 0
        self.check_sync_every = int(check_sync_every)
        self.synced = False  # whether the last optimiser step ended a bmuf/ma block
        self._consistency_extra = dict(consistency or {})
        self._resume_dist: Optional[Dict] = None
        self._resume_world = 1
        self.amp, self.amp_dtype = _amp_settings(cfg, self.device)
        if self.sim_workers and self.amp and self.amp_dtype == torch.float16:
            raise ValueError("--simulate-workers needs --amp false or --amp-dtype bfloat16 (no fp16 loss scaling)")

        # data: every cut checked before anything trains; where it came from goes to config.yaml (the
        # report's ablation tells runs apart by it, e.g. targets realigned by a teacher)
        self.data_sources = {"train_cuts": source_names(train_cuts), "dev_cuts": source_names(dev_cuts)}
        t0 = time.perf_counter()
        if cfg.loader not in ("manifests", "shards"):
            raise ValueError(f"unknown loader {cfg.loader!r} (manifests | shards)")
        if (cfg.loader == "shards") != (train_cuts is None):
            raise ValueError("loader 'shards' streams a student's training shards (asrkit.bin.train_student "
                             "--labelled-shards); train cuts are read with the manifests loader")
        reader = reader_with_norm(reader, cfg.cmvn_mode, train_cuts, dev_cuts)  # global | speaker | utterance
        self.train_set = self.sampler = None  # None: a subclass streams its batches (asrkit.nnet.shard_loader)
        if train_cuts is not None:
            self.train_set = ChunkDataset.from_cuts(load_cuts(train_cuts), reader, cfg.chunk_size, cfg.left_context,
                                                    cfg.effective_right_context, cfg.min_chunk, "hard",
                                                    cfg.num_senones)
            self.sampler = BucketingBatchSampler(self.train_set.input_lengths(), cfg.max_frames, cfg.num_buckets,
                                                 shuffle=True, seed=cfg.seed, max_batch_size=cfg.max_batch_size)
        self.dev_set = (ChunkDataset.from_cuts(load_cuts(dev_cuts), reader, 0, 0, 0, 1, "hard", cfg.num_senones)
                        if dev_cuts is not None else None)
        if self.train_set is not None:
            log.info("data: %d train cuts -> %d chunks (%d scored frames), %d dev cuts; checked in %.1f s",
                     len(self.train_set.cuts), len(self.train_set), self.train_set.scored_frames(),
                     len(self.dev_set.cuts) if self.dev_set else 0, time.perf_counter() - t0)
        if self.world_size > 1:
            check_consistency(self.consistency_items())  # raises on every rank, naming the odd ones

        seed_everything(cfg.seed)
        self.model: LstmAcousticModel = build_model(self.model_cfg).to(self.device)
        if cfg.init:
            ck = load_checkpoint(cfg.init)
            check_model_config(ck, self.model_cfg, cfg.init)
            self.model.load_state_dict(ck["model"])
            log.info("initialised the model from %s", cfg.init)
        if sync is not None and sync.mode == "gtc" and sync.gtc_sparse_adam:  # sparse averaged gradients
            if cfg.optimizer != "adam":
                raise ValueError(f"--gtc-sparse-adam replaces the adam optimiser; the config has {cfg.optimizer!r}")
            self.opt = SparseGradAdam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adamw":  # decoupled weight decay (Loshchilov & Hutter), unlike Adam's L2
            self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adam | adamw | sgd)")
        self.sched = LrScheduler(cfg)
        self.specaug = make_specaug(cfg)  # None: off; applied in the training steps only
        if not 0.0 <= cfg.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), not {cfg.label_smoothing}")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best = {"dev_acc": -1.0, "dev_loss": math.inf, "step": 0, "epoch": 0}
        self.history: List[Dict] = []
        self.resumed_from: Optional[Path] = None
        # batch kind -> name in logs for per-kind statistics (None: off); set by subclasses before resuming
        self.kind_names: Optional[Dict[str, str]] = getattr(self, "kind_names", None)
        if self.world_size > 1 and self.rank > 0:
            torch.manual_seed(cfg.seed * 1000003 + self.rank)  # own dropout masks (model init is rank 0's)
        if resume:
            self._maybe_resume()
        else:
            # a fresh run must not later resume from an older run's files
            if list_checkpoints(self.out_dir):
                raise FileExistsError(f"{self.out_dir} holds checkpoints of another run; use resume or a new dir")
        self.train_model: torch.nn.Module = self.model
        if self.sync_cfg is not None:
            # after the resume: DDP / BMUF / MA broadcast rank 0's weights; then each rank's own state
            self.sync = make_sync(self.sync_cfg, self.model, self.opt,
                                  device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.train_model = self.sync.model
            self._load_dist_state(self._resume_dist)
            log.info("sync %s over %d %s (rank %d): %s", self.sync_cfg.mode, self.sim_workers or self.world_size,
                     "simulated workers" if self.sim_workers else "processes", self.rank,
                     {k: v for k, v in self.sync_cfg.to_dict().items() if v is not None})
        elif self._resume_dist is not None:
            log.warning("%s was written by a %s run; continuing without sync", self.resumed_from,
                        self._resume_dist.get("sync_config", {}).get("mode"))
            self._rescale_position()
        self.write_config()
        self.tb = None
        if cfg.tensorboard and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step + 1)
            except Exception as e:  # noqa: BLE001 - tensorboard is optional
                log.warning("tensorboard disabled: %s", e)

    # ------------------------------------------------------------------ checkpoints
    def config_record(self) -> Dict:
        """What ``config.yaml`` holds (subclasses add their sections)."""
        return {"train": self.cfg.to_dict(), "model": self.model_cfg.to_dict(), "data": dict(self.data_sources)}

    def write_config(self) -> None:
        """Writes ``config.yaml`` from :meth:`config_record` (rank 0)."""
        if self.is_main:
            atomic_write_text(self.out_dir / "config.yaml", yaml.safe_dump(self.config_record(), sort_keys=False))

    def consistency_items(self) -> Dict[str, Any]:
        """What every rank must agree on before training (all-gathered hashes; subclasses add theirs)."""
        per_rank = ("device", "num_workers", "num_threads", "progress")
        items = {"model_config": self.model_cfg.to_dict(), "num_senones": self.cfg.num_senones,
                 "train_config": {k: v for k, v in self.cfg.to_dict().items() if k not in per_rank},
                 "sync": self.sync_cfg.to_dict() if self.sync_cfg is not None else None,
                 "sync_mode": self.sync_cfg.mode if self.sync_cfg is not None else None,
                 "train_data": ([len(self.train_set), self.train_set.scored_frames()] if self.train_set is not None
                                else None),
                 "dev_data": len(self.dev_set) if self.dev_set is not None else None}
        items.update(self._consistency_extra)
        return items

    def _model_state(self) -> Dict:
        """The weights to save (BMUF: the filtered model W_g)."""
        if self.sync is None:
            return self.model.state_dict()
        with self.sync.eval_weights() as m:
            return {k: v.detach().clone() for k, v in m.state_dict().items()}

    @contextmanager
    def _eval_weights(self):
        if self.sync is None:
            yield self.model
        else:
            with self.sync.eval_weights() as m:
                yield m

    def checkpoint_state(self) -> Dict:
        """What a checkpoint holds (rank 0), :meth:`extra_state` included."""
        return {
            "model_config": self.model_cfg.to_dict(), "train_config": self.cfg.to_dict(),
            "model": self._model_state(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "best": dict(self.best), "history": list(self.history), "rng": rng_state(),
            **self.extra_state(),
        }

    def extra_state(self) -> Dict:
        """What a subclass adds to the checkpoint (read back by :meth:`load_extra_state`)."""
        return {}

    def load_extra_state(self, ck: Dict) -> None:
        """Subclasses restore what :meth:`extra_state` added (called while resuming)."""

    def save(self, name: str) -> Optional[Path]:
        """Writes a checkpoint (rank 0; a collective under torchrun: every rank calls it). None on other ranks."""
        extra = (self.ranks.gather_sync_state(self.sync, self.model, self.opt, rng_state(), bool(self.sim_workers))
                 if self.sync is not None else None)
        if not self.is_main:
            return None
        state = self.checkpoint_state()
        if extra is not None:
            state["dist"] = extra
            state["world_size"] = self.world_size
        path = save_checkpoint(self.out_dir / name, state)
        prune_checkpoints(self.out_dir, self.cfg.keep_last)
        return path

    def _load_dist_state(self, d: Optional[Dict]) -> None:
        if d is None:
            if self.resumed_from is not None and self._resume_world != self.world_size:
                self._rescale_position()
            return
        if self.ranks.restore_sync_state(d, self.sync, self.model, self.opt, set_rng_state, self.resumed_from):
            self._rescale_position()

    def _rescale_position(self) -> None:
        """A checkpoint of another world size: the same share of the epoch, approximately."""
        if self._resume_world != self.world_size and self.batch_in_epoch:
            new = (self.batch_in_epoch * self._resume_world) // self.world_size
            log.warning("world size %d -> %d: position in epoch %d moves from batch %d to %d of each rank",
                        self._resume_world, self.world_size, self.epoch + 1, self.batch_in_epoch, new)
            self.batch_in_epoch = new
            self._resume_world = self.world_size

    def _maybe_resume(self) -> None:
        # rank 0 picks the checkpoint, every rank loads the same file
        path = self.ranks.broadcast(latest_checkpoint(self.out_dir) if self.is_main else None)
        if path is None:
            return
        ck = load_checkpoint(path, map_location=self.device)
        check_model_config(ck, self.model_cfg, path)
        saved = ck.get("train_config", {})
        if saved.get("cmvn_mode", "global") != self.cfg.cmvn_mode:  # the weights expect the other inputs
            raise ConfigMismatchError(f"{path}: trained with cmvn_mode {saved.get('cmvn_mode', 'global')!r}, "
                                      f"now {self.cfg.cmvn_mode!r}; use a new out_dir or the same cmvn_mode")
        for k in ("seed", "chunk_size", "left_context", "right_context", "max_frames", "num_buckets", "optimizer",
                  "label_smoothing", "specaug_time_masks", "specaug_time_width", "specaug_freq_masks",
                  "specaug_freq_width", "specaug_time_max_fraction"):
            if k in saved and saved[k] != getattr(self.cfg, k):
                log.warning("resuming %s with %s=%r (checkpoint had %r): the run will not match an "
                            "uninterrupted one", path, k, getattr(self.cfg, k), saved[k])
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.batch_in_epoch, self.step = ck["epoch"], ck["batch_in_epoch"], ck["step"]
        self.best = ck["best"]
        self.history = ck.get("history", [])
        set_rng_state(ck["rng"])
        self._resume_dist = ck.get("dist")
        self._resume_world = int(ck.get("world_size", 1))
        self.load_extra_state(ck)
        self.resumed_from = path
        log.info("resumed from %s: step %d, epoch %d, batch %d", path, self.step, self.epoch, self.batch_in_epoch)

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: Dict, batch_idx: int, lr_mult: float = 1.0) -> StepStats:
        """One optimiser step on ``batch`` (already on the device) at the scheduler's learning rate times
        ``lr_mult``."""
        self.train_model.train()
        lr = self.sched.lr(self.step + 1) * lr_mult
        for g in self.opt.param_groups:
            g["lr"] = lr
        if self.specaug is not None:
            batch = dict(batch, features=self.specaug(batch["features"], batch["lengths"], self.step + 1,
                                                      self.data_rank))
        with self._autocast():
            logits, _ = self.train_model(batch["features"], batch["lengths"])
        stats = compute_loss(logits, batch, label_smoothing=self.cfg.label_smoothing)
        loss = stats.loss
        if not torch.isfinite(loss) and self.sync is None:  # with sync: the workers agree to skip it below
            raise NonFiniteLossError(self.step + 1, self.epoch, batch_idx, batch["cut_ids"])
        self.opt.zero_grad(set_to_none=True)
        if self.sync is not None and hasattr(self.sync.state, "grad_scale"):
            self.sync.state.grad_scale = float(self.scaler.get_scale()) if self.scaler.is_enabled() else 1.0
        self.scaler.scale(loss).backward()  # ddp/gtc: gradients averaged across ranks here (comm hook)
        if self.sync is not None:
            self.sync.before_optimizer_step(self.step)  # bmuf/ma warm-up: gradient averaging
            finite = self.sync.grads_finite()  # the same verdict on every worker
            self.sync.note_skip(self.step + 1, not finite)  # raises after too many in a row
            if not finite:
                return self._skipped_step(stats, lr, batch, batch_idx)
        grad_norm = float("nan")
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
            if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                raise NonFiniteLossError(self.step + 1, self.epoch, batch_idx, batch["cut_ids"], "gradient")
        self.scaler.step(self.opt)
        self.scaler.update()
        self.synced = self.sync.after_optimizer_step(self.step) if self.sync is not None else False
        self.step += 1
        return StepStats(float(stats.loss_sum.detach()), int(stats.frames), int(stats.correct), lr, grad_norm,
                         batch.get("kind", "hard"))

    def _skipped_step(self, stats, lr: float, batch: Dict, batch_idx: int) -> StepStats:
        """A step skipped on every worker for a non-finite gradient: no update; fp16: the scale backs off."""
        self.opt.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.update(new_scale=self.scaler.get_scale() * self.scaler.get_backoff_factor())
        log.warning("step %d (epoch %d, batch %d) skipped; cuts of this worker: %s", self.step + 1, self.epoch + 1,
                    batch_idx, ", ".join(batch["cut_ids"][:5]))
        self.synced = False
        self.step += 1
        return StepStats(0.0, 0, 0, lr, float("nan"), batch.get("kind", "hard"))

    def train_step_simulated(self, batches: List[Dict], batch_idx: int, lr_mult: float = 1.0) -> StepStats:
        """One update of the simulated workers (:mod:`asrkit.distributed.simulate`), batch w to worker w."""
        self.train_model.train()
        lr = self.sched.lr(self.step + 1) * lr_mult
        for g in self.opt.param_groups:
            g["lr"] = lr

        def loss_fn(model, batch):
            with self._autocast():
                logits, _ = model(batch["features"], batch["lengths"])
            st = compute_loss(logits, batch, label_smoothing=self.cfg.label_smoothing)
            return st.loss, st

        if self.specaug is not None:  # worker w's masks, as rank w of a real run would draw them
            batches = [dict(b, features=self.specaug(b["features"], b["lengths"], self.step + 1, w))
                       for w, b in enumerate(batches)]
        ok, stats = self.sync.step(batches, loss_fn, self.cfg.grad_clip)
        self.sync.note_skip(self.step + 1, not ok)
        if not ok:
            return self._skipped_step(None, lr, batches[0], batch_idx)
        self.synced = False
        self.step += 1
        return StepStats(float(sum(float(st.loss_sum.detach()) for st in stats)), sum(int(st.frames) for st in stats),
                         sum(int(st.correct) for st in stats), lr, float("nan"), batches[0].get("kind", "hard"))

    def _simulated_epoch_batches(self, epoch: int, start: int):
        """Every simulated worker's share of the epoch (as rank w of a real run), zipped: each item is
        ``(list of one batch per worker, lr_mult)``; all workers' updates are of one kind and multiplier."""
        gens = []
        try:
            for w in range(self.sim_workers):
                self.data_rank, self.data_world = w, self.sim_workers
                n, g = self.epoch_batches(epoch, start)
                gens.append(g)
        finally:
            self.data_rank, self.data_world = self.rank, self.world_size

        def zipped():
            for items in zip(*gens):
                mults = {m for _, m in items}
                if len(mults) != 1:
                    raise RuntimeError(f"simulated workers got different LR multipliers {sorted(mults)} "
                                       f"at step {self.step + 1}")
                yield [b for b, _ in items], items[0][1]

        return n, zipped()

    def epoch_batches(self, epoch: int, start: int):
        """``(number of batches of epoch, iterator of (batch, lr_mult))`` from batch ``start`` of ``epoch``
        on; the batch order must be a function of ``(seed, epoch)`` so that resuming is exact."""
        if self.data_world > 1:  # this rank's share of the same seeded order
            batches = self.sampler.batches(epoch)
            mine = [batches[i] for i in shard_positions(len(batches), self.data_rank, self.data_world)]
            loader = make_loader(self.train_set, mine[start:], self.cfg.num_workers, self.cfg.seed, epoch,
                                 pin_memory=self.device.type == "cuda")
            return len(mine), ((b, 1.0) for b in loader)
        self.sampler.set_epoch(epoch, start)
        n_batches = self.sampler.num_batches()
        loader = make_loader(self.train_set, self.sampler, self.cfg.num_workers, self.cfg.seed, epoch,
                             pin_memory=self.device.type == "cuda")
        return n_batches, ((b, 1.0) for b in loader)

    def _dev_scores(self) -> Optional[Dict]:
        """Dev loss/accuracy of the eval weights: rank 0 evaluates, every rank gets the numbers."""
        if self.dev_set is None:
            return None
        dev = None
        if self.is_main:
            with self._eval_weights():
                dev = self.evaluate()
        return self.ranks.broadcast(dev)

    def _reduce_epoch(self, ep: Meter) -> Meter:
        """Epoch totals over all ranks (loss, frames, correct) for the log line; per-kind totals stay local."""
        if self.world_size == 1:
            return ep
        loss_sum, frames, correct = self.ranks.sum_over_ranks([ep.total.loss_sum, ep.total.frames, ep.total.correct])
        total = Totals(loss_sum, int(frames), int(correct), ep.total.batches)
        return Meter(ep.per_kind, total, ep.kinds, ep.t0)

    def _log_comm(self) -> None:
        if self.sync is None:
            return
        log.info("communication (rank %d of %d): %s", self.rank, self.world_size, self.sync.accounting.format())
        if self.tb is not None:
            self.sync.accounting.log_to(self.tb, self.step)

    def _write_comm_summary(self, seconds: float, steps_this_run: int) -> None:
        """``comm.json`` (rank 0): the accounting of every rank, wall time and a cross-rank weight check.
        A launch that made no step (a finished run relaunched) keeps the record of the run that trained;
        every rank takes the same branch (the step count is the same on all), so the gathers stay matched."""
        if self.sync is None or steps_this_run == 0:
            return
        out = self.ranks.comm_summary(self.sync, self.model, self._eval_weights, self.step, steps_this_run, seconds,
                                      self.sim_workers)
        if out is not None:
            atomic_write_text(self.out_dir / "comm.json", comm_json_text(out))
            log.info("wrote %s: %s", self.out_dir / "comm.json", self.sync.accounting.format())

    def _maybe_check_sync(self) -> None:
        """``--check-sync-every``: ddp/gtc every N steps, bmuf/ma after each block sync."""
        if self.sync is None or self.check_sync_every <= 0 or self.world_size == 1:
            return
        if self.synced if self.sync_cfg.mode in ("bmuf", "ma") else self.step % self.check_sync_every == 0:
            self.ranks.check_sync(self.model, self.sync_cfg.mode, "step", self.step)

    @torch.no_grad()
    def evaluate(self, dataset: Optional[ChunkDataset] = None) -> Dict:
        dataset = dataset or self.dev_set
        self.model.eval()
        sampler = BucketingBatchSampler(dataset.input_lengths(), self.cfg.dev_max_frames, 1, shuffle=False)
        loader = make_loader(dataset, sampler, num_workers=min(self.cfg.num_workers, 1))
        tot = Totals()
        for batch in loader:
            batch = batch_to(batch, self.device)
            with self._autocast():
                logits, _ = self.model(batch["features"], batch["lengths"])
            st = compute_loss(logits, batch)
            tot.add(StepStats(float(st.loss_sum), int(st.frames), int(st.correct), 0.0))
        return {"loss": tot.loss, "acc": tot.acc, "frames": tot.frames}

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        cfg = self.cfg
        log.info("model: %s %s, %.2f M parameters, device %s, amp %s", cfg.role, self.model_cfg,
                 self.model.num_parameters() / 1e6, self.device, self.amp)
        t_run, step0 = time.perf_counter(), self.step
        stopped = "done"
        budget = cfg.max_updates
        while self.step < budget if budget > 0 else self.epoch < cfg.num_epochs:
            if self.sched.stop:
                stopped = "newbob"
                break
            epoch = self.epoch
            n_batches, batches = (self._simulated_epoch_batches(epoch, self.batch_in_epoch) if self.sim_workers
                                  else self.epoch_batches(epoch, self.batch_in_epoch))
            per_kind = bool(self.kind_names)
            ep, win = Meter(per_kind), Meter(per_kind)
            bar = tqdm(total=n_batches, initial=self.batch_in_epoch, desc=f"epoch {epoch + 1}/{cfg.num_epochs}",
                       unit="batch", disable=not cfg.progress or not self.is_main, mininterval=1.0,
                       dynamic_ncols=True)
            hit_max = False
            for batch, lr_mult in batches:
                batch_idx = self.batch_in_epoch
                if self.sim_workers:
                    batch = [batch_to(b, self.device, non_blocking=True) for b in batch]
                    st = self.train_step_simulated(batch, batch_idx, lr_mult)
                else:
                    batch = batch_to(batch, self.device, non_blocking=True)
                    st = self.train_step(batch, batch_idx, lr_mult)
                self.batch_in_epoch += 1
                ep.add(st)
                win.add(st)
                bar.update(1)
                if self.step % max(1, cfg.log_every) == 0:
                    self._log_window(win, st, bar)
                    win = Meter(per_kind)
                self._maybe_check_sync()
                if cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0:
                    self.save(f"checkpoint-{self.step}.pt")
                if self.step_hook is not None:
                    self.step_hook(self.step)
                if budget > 0 and self.step >= budget:
                    break  # the budget ends the run here: closed below as an epoch
                if cfg.max_steps and self.step >= cfg.max_steps:
                    hit_max = True
                    break
            bar.close()
            if hit_max:
                if not (cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0):
                    self.save(f"checkpoint-{self.step}.pt")
                stopped = "max_steps"
                self._epoch_line(self._reduce_epoch(ep), None, partial=True)
                self._log_comm()
                break
            dev = self._dev_scores()
            if dev is not None:
                self._note_dev(dev, epoch)
            self.history.append(self._epoch_line(self._reduce_epoch(ep), dev))
            self._log_comm()
            self.epoch += 1
            self.batch_in_epoch = 0
            self.save(f"epoch-{self.epoch}.pt")
            if self.is_main:
                with open(self.out_dir / "history.jsonl", "a") as f:
                    f.write(json.dumps(self.history[-1]) + "\n")
        self._write_comm_summary(time.perf_counter() - t_run, self.step - step0)
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        return TrainResult(self.out_dir, self.step, self.epoch, self.best["dev_acc"], self.history, stopped)

    def _note_dev(self, dev: Dict, epoch: int) -> None:
        """An epoch's dev scores: the scheduler, TensorBoard and ``best.pt`` (a better frame accuracy)."""
        self.sched.epoch_end(dev["loss"])
        if self.tb is not None:
            self.tb.add_scalar("dev/loss", dev["loss"], self.step)
            self.tb.add_scalar("dev/frame_acc", dev["acc"], self.step)
        if dev["acc"] > self.best["dev_acc"]:
            self.best = {"dev_acc": dev["acc"], "dev_loss": dev["loss"], "step": self.step, "epoch": epoch + 1}
            if self.is_main:
                save_checkpoint(self.out_dir / "best.pt", {
                    "model_config": self.model_cfg.to_dict(), "model": self._model_state(),
                    "step": self.step, "epoch": epoch + 1, "dev": dev, "train_config": self.cfg.to_dict()})

    def _log_window(self, win: Meter, st: StepStats, bar) -> None:
        """The progress bar's numbers and TensorBoard's train scalars over the updates since the last."""
        fps = win.frames_per_second()
        bar.set_postfix(loss=f"{win.total.loss:.3f}", acc=f"{win.total.acc:.3f}", lr=f"{st.lr:.2e}",
                        fps=f"{fps:.0f}", refresh=False)
        if self.tb is None:
            return
        self.tb.add_scalar("train/loss", win.total.loss, self.step)
        self.tb.add_scalar("train/frame_acc", win.total.acc, self.step)
        self.tb.add_scalar("train/lr", st.lr, self.step)
        self.tb.add_scalar("train/frames_per_s", fps, self.step)
        if math.isfinite(st.grad_norm):
            self.tb.add_scalar("train/grad_norm", st.grad_norm, self.step)
        for kind, kd in win.kinds.items():
            name = self.kind_names.get(kind, kind)
            self.tb.add_scalar(f"train_{name}/loss", kd.loss, self.step)
            self.tb.add_scalar(f"train_{name}/frame_acc", kd.acc, self.step)

    def _epoch_line(self, ep: Meter, dev: Optional[Dict], partial: bool = False) -> Dict:
        wall = ep.seconds()
        tot = ep.total
        line = {"epoch": self.epoch + 1, "step": self.step, "train_loss": tot.loss,
                "train_acc": tot.acc, "frames": tot.frames, "seconds": round(wall, 2),
                "frames_per_s": tot.frames / max(wall, 1e-9), "lr": self.sched.lr(self.step)}
        if self.cfg.max_updates > 0:  # the budget beside the updates made (``step``)
            line["max_updates"] = self.cfg.max_updates
        for kind, kd in ep.kinds.items():
            name = self.kind_names.get(kind, kind)
            line.update({f"train_loss_{name}": kd.loss, f"train_acc_{name}": kd.acc,
                         f"frames_{name}": kd.frames, f"batches_{name}": kd.batches})
        if dev is not None:
            line.update(dev_loss=dev["loss"], dev_acc=dev["acc"])
        msg = (f"epoch {line['epoch']}{' (partial)' if partial else ''}: step {self.step}, "
               f"train loss {line['train_loss']:.4f} acc {line['train_acc']:.4f}")
        for kind in ep.kinds:
            name = self.kind_names.get(kind, kind)
            msg += f" ({name} loss {line[f'train_loss_{name}']:.4f} acc {line[f'train_acc_{name}']:.4f})"
        if dev is not None:
            msg += f", dev loss {dev['loss']:.4f} acc {dev['acc']:.4f} (best {self.best['dev_acc']:.4f})"
        msg += f", lr {line['lr']:.2e}, {tot.frames} frames in {wall:.1f} s, {line['frames_per_s']:.0f} frames/s"
        log.info(msg)
        return line


def source_names(cuts) -> Union[str, List[str], None]:
    """How config.yaml records a data source: a manifest path as a string, a list of paths as a list, a
    set held in memory (a CutSet, a list of cuts) or none as None."""
    if isinstance(cuts, (str, os.PathLike)):
        return str(cuts)
    if isinstance(cuts, (list, tuple)) and cuts and all(isinstance(c, (str, os.PathLike)) for c in cuts):
        return [str(c) for c in cuts]
    return None


def train(cfg: TrainConfig, train_cuts, dev_cuts, cmvn, out_dir: Union[str, Path],
          step_hook: Optional[Callable[[int], None]] = None, resume: bool = True, **dist_kw) -> TrainResult:
    """Train (or resume) in ``out_dir``. ``train_cuts`` / ``dev_cuts``: manifest paths or CutSets;
    ``cmvn``: ``data/cmvn.npz`` path, CmvnStats or None (no normalisation). ``dist_kw``: ``sync``
    (:class:`asrkit.distributed.sync.SyncConfig`), ``consistency``, ``check_sync_every``, ``dist_backend``
    (see :class:`Trainer`)."""
    reader = FeatureReader(cmvn, stack=True)
    return Trainer(cfg, train_cuts, dev_cuts, reader, out_dir, step_hook=step_hook, resume=resume,
                   **dist_kw).run()
