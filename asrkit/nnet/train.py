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
* ``best.pt``: the model with the best dev frame accuracy; TensorBoard scalars (``tensorboard/``);
  tqdm progress; one summary line per epoch (also in ``history.jsonl``);
* a non-finite loss raises :class:`NonFiniteLossError` with the step, the batch and its cut ids,
  before anything is written, so the last good checkpoint stays as it was;
* a checkpoint of another model configuration is refused (:class:`ConfigMismatchError`, naming the
  fields that differ).

Extension points (used by :mod:`asrkit.nnet.ssl`, the semi-supervised student): ``epoch_batches``
gives an epoch's batches with a learning-rate multiplier each, ``train_step(..., lr_mult)`` scales the
scheduler's LR for one update, ``kind_names`` turns on per-kind training statistics (loss and frame
accuracy per batch kind in the log, ``history.jsonl`` and TensorBoard), ``_load_extra_state`` reads
what a subclass added to the checkpoint.
"""
from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch

from asrkit.nnet.checkpoint import (ConfigMismatchError, check_model_config, latest_checkpoint, load_checkpoint,
                                    prune_checkpoints, rng_state, save_checkpoint, seed_everything, set_rng_state)
from asrkit.nnet.dataset import ChunkDataset, batch_to, load_cuts, make_loader
from asrkit.nnet.losses import compute_loss
from asrkit.nnet.models import LstmAcousticModel, ModelConfig, build_model
from asrkit.nnet.presets import preset
from asrkit.nnet.sampler import BucketingBatchSampler
from asrkit.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "ConfigMismatchError", "LrScheduler", "train",
           "Trainer", "model_config_of", "pick_device"]


@dataclass
class TrainConfig:
    # model
    role: str = "student"  # teacher (bidirectional) | student (unidirectional)
    preset: str = "small"  # paper | medium | small | tiny
    num_senones: int = 0  # required
    input_dim: int = 192
    num_layers: Optional[int] = None  # None: the preset's
    hidden_size: Optional[int] = None
    proj_size: Optional[int] = None
    dropout: Optional[float] = None
    # data
    chunk_size: int = 200  # scored frames per training chunk (0: whole utterances)
    left_context: int = 20  # unscored input frames before a chunk
    right_context: Optional[int] = None  # None: 20 for the teacher, 0 for the student
    min_chunk: int = 20
    max_frames: int = 10000  # padded input frames per batch
    max_batch_size: int = 0
    num_buckets: int = 10
    num_workers: int = 1
    dev_max_frames: int = 20000
    # optimisation
    num_epochs: int = 10
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "warmup"  # warmup | newbob | constant
    warmup_steps: int = 200
    decay_half_life: int = 5000  # steps (warmup scheduler); 0: no decay
    min_lr: float = 1e-6
    newbob_start: float = 0.01  # relative dev-loss improvement under which halving starts
    newbob_stop: float = 0.001  # ... and under which training stops once halving started
    newbob_factor: float = 0.5
    grad_clip: float = 5.0  # max gradient norm; 0: off
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # torch intra-op threads; 0: torch's default (1 is often faster on a busy 2-core box)
    amp: str = "auto"  # auto (on for CUDA) | true | false
    amp_dtype: str = "float16"  # float16 (with GradScaler) | bfloat16
    checkpoint_every: int = 1000  # steps; 0: epoch ends only
    keep_last: int = 3
    log_every: int = 50
    max_steps: int = 0  # stop (with a checkpoint) at this global step; 0: no limit
    tensorboard: bool = True
    progress: bool = True
    init: Optional[str] = None  # initialise the model from this checkpoint (not a resume)

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown training config fields: {sorted(unknown)}")
        return cls(**d)

    @property
    def effective_right_context(self) -> int:
        if self.right_context is not None:
            return self.right_context
        return 20 if self.role == "teacher" else 0


def model_config_of(cfg: TrainConfig) -> ModelConfig:
    if cfg.num_senones <= 0:
        raise ValueError("num_senones must be set (the number of senones of the tree)")
    over = {k: getattr(cfg, k) for k in ("num_layers", "hidden_size", "proj_size", "dropout")
            if getattr(cfg, k) is not None}
    return preset(cfg.role, cfg.preset, num_senones=cfg.num_senones, input_dim=cfg.input_dim, **over)


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


class LrScheduler:
    """Learning rate as a function of the step (warmup), or of the dev losses seen so far (newbob)."""

    def __init__(self, cfg: TrainConfig):
        if cfg.scheduler not in ("warmup", "newbob", "constant"):
            raise ValueError(f"unknown scheduler {cfg.scheduler!r}")
        self.cfg = cfg
        self.scale = 1.0  # newbob's factor
        self.halving = False
        self.stop = False
        self.prev_dev_loss: Optional[float] = None

    def lr(self, step: int) -> float:
        c = self.cfg
        if c.scheduler == "warmup":
            lr = c.lr * min(1.0, step / max(1, c.warmup_steps))
            if c.decay_half_life > 0 and step > c.warmup_steps:
                lr = max(c.min_lr, c.lr * 0.5 ** ((step - c.warmup_steps) / c.decay_half_life))
            return lr
        if c.scheduler == "newbob":
            return max(c.min_lr, c.lr * self.scale)
        return c.lr

    def epoch_end(self, dev_loss: float) -> None:
        c = self.cfg
        if c.scheduler != "newbob":
            return
        if self.prev_dev_loss is not None:
            impr = (self.prev_dev_loss - dev_loss) / max(abs(self.prev_dev_loss), 1e-12)
            if self.halving and impr < c.newbob_stop:
                self.stop = True
            if impr < c.newbob_start:
                self.halving = True
            if self.halving:
                self.scale *= c.newbob_factor
        self.prev_dev_loss = dev_loss if self.prev_dev_loss is None else min(self.prev_dev_loss, dev_loss)

    def state_dict(self) -> Dict:
        return {"scale": self.scale, "halving": self.halving, "stop": self.stop, "prev_dev_loss": self.prev_dev_loss}

    def load_state_dict(self, st: Dict) -> None:
        self.scale, self.halving, self.stop, self.prev_dev_loss = (st["scale"], st["halving"], st["stop"],
                                                                  st["prev_dev_loss"])


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
    """Holds the state of one run; :func:`train` is the convenient entry."""

    def __init__(self, cfg: TrainConfig, train_cuts, dev_cuts, reader, out_dir: Union[str, Path],
                 step_hook: Optional[Callable[[int], None]] = None, resume: bool = True):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step_hook = step_hook
        self.model_cfg = model_config_of(cfg)
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        self.device = pick_device(cfg.device)
        self.amp, self.amp_dtype = _amp_settings(cfg, self.device)

        # data: every cut checked before anything trains
        t0 = time.perf_counter()
        self.train_set = ChunkDataset.from_cuts(load_cuts(train_cuts), reader, cfg.chunk_size, cfg.left_context,
                                                cfg.effective_right_context, cfg.min_chunk, "hard", cfg.num_senones)
        self.dev_set = (ChunkDataset.from_cuts(load_cuts(dev_cuts), reader, 0, 0, 0, 1, "hard", cfg.num_senones)
                        if dev_cuts is not None else None)
        self.sampler = BucketingBatchSampler(self.train_set.input_lengths(), cfg.max_frames, cfg.num_buckets,
                                             shuffle=True, seed=cfg.seed, max_batch_size=cfg.max_batch_size)
        log.info("data: %d train cuts -> %d chunks (%d scored frames), %d dev cuts; checked in %.1f s",
                 len(self.train_set.cuts), len(self.train_set), self.train_set.scored_frames(),
                 len(self.dev_set.cuts) if self.dev_set else 0, time.perf_counter() - t0)

        seed_everything(cfg.seed)
        self.model: LstmAcousticModel = build_model(self.model_cfg).to(self.device)
        if cfg.init:
            ck = load_checkpoint(cfg.init)
            check_model_config(ck, self.model_cfg, cfg.init)
            self.model.load_state_dict(ck["model"])
            log.info("initialised the model from %s", cfg.init)
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adam | sgd)")
        self.sched = LrScheduler(cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best = {"dev_acc": -1.0, "dev_loss": math.inf, "step": 0, "epoch": 0}
        self.history: List[Dict] = []
        self.resumed_from: Optional[Path] = None
        # batch kind -> name in logs for per-kind statistics (None: off); set by subclasses before resuming
        self.kind_names: Optional[Dict[str, str]] = getattr(self, "kind_names", None)
        if resume:
            self._maybe_resume()
        else:
            # a fresh run must not later resume from an older run's files
            from asrkit.nnet.checkpoint import list_checkpoints
            if list_checkpoints(self.out_dir):
                raise FileExistsError(f"{self.out_dir} holds checkpoints of another run; use resume or a new dir")
        atomic_write_text(self.out_dir / "config.yaml", _to_yaml({"train": cfg.to_dict(),
                                                                  "model": self.model_cfg.to_dict()}))
        self.tb = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step + 1)
            except Exception as e:  # noqa: BLE001 - tensorboard is optional
                log.warning("tensorboard disabled: %s", e)

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> Dict:
        return {
            "model_config": self.model_cfg.to_dict(), "train_config": self.cfg.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "best": dict(self.best), "history": list(self.history), "rng": rng_state(),
        }

    def save(self, name: str) -> Path:
        path = save_checkpoint(self.out_dir / name, self._state())
        prune_checkpoints(self.out_dir, self.cfg.keep_last)
        return path

    def _maybe_resume(self) -> None:
        path = latest_checkpoint(self.out_dir)
        if path is None:
            return
        ck = load_checkpoint(path, map_location=self.device)
        check_model_config(ck, self.model_cfg, path)
        saved = ck.get("train_config", {})
        for k in ("seed", "chunk_size", "left_context", "right_context", "max_frames", "num_buckets", "optimizer"):
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
        self._load_extra_state(ck)
        self.resumed_from = path
        log.info("resumed from %s: step %d, epoch %d, batch %d", path, self.step, self.epoch, self.batch_in_epoch)

    def _load_extra_state(self, ck: Dict) -> None:
        """Subclasses restore what they added to :meth:`_state` (called while resuming)."""

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: Dict, batch_idx: int, lr_mult: float = 1.0) -> Dict:
        """One optimiser step on ``batch`` (already on the device) at the scheduler's learning rate times
        ``lr_mult``; returns float statistics."""
        self.model.train()
        lr = self.sched.lr(self.step + 1) * lr_mult
        for g in self.opt.param_groups:
            g["lr"] = lr
        with self._autocast():
            logits, _ = self.model(batch["features"], batch["lengths"])
        stats = compute_loss(logits, batch)
        loss = stats.loss
        if not torch.isfinite(loss):
            raise NonFiniteLossError(self.step + 1, self.epoch, batch_idx, batch["cut_ids"])
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grad_norm = float("nan")
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
            if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                raise NonFiniteLossError(self.step + 1, self.epoch, batch_idx, batch["cut_ids"], "gradient")
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        return {"loss_sum": float(stats.loss_sum.detach()), "frames": int(stats.frames), "correct": int(stats.correct),
                "lr": lr, "grad_norm": grad_norm, "kind": batch.get("kind", "hard")}

    def epoch_batches(self, epoch: int, start: int):
        """``(number of batches of epoch, iterator of (batch, lr_mult))`` from batch ``start`` of ``epoch``
        on; the batch order must be a function of ``(seed, epoch)`` so that resuming is exact."""
        self.sampler.set_epoch(epoch, start)
        n_batches = self.sampler.num_batches()
        loader = make_loader(self.train_set, self.sampler, self.cfg.num_workers, self.cfg.seed, epoch,
                             pin_memory=self.device.type == "cuda")
        return n_batches, ((b, 1.0) for b in loader)

    @torch.no_grad()
    def evaluate(self, dataset: Optional[ChunkDataset] = None) -> Dict:
        dataset = dataset or self.dev_set
        self.model.eval()
        sampler = BucketingBatchSampler(dataset.input_lengths(), self.cfg.dev_max_frames, 1, shuffle=False)
        loader = make_loader(dataset, sampler, num_workers=min(self.cfg.num_workers, 1))
        tot = {"loss_sum": 0.0, "frames": 0, "correct": 0}
        for batch in loader:
            batch = batch_to(batch, self.device)
            with self._autocast():
                logits, _ = self.model(batch["features"], batch["lengths"])
            st = compute_loss(logits, batch)
            tot["loss_sum"] += float(st.loss_sum)
            tot["frames"] += int(st.frames)
            tot["correct"] += int(st.correct)
        n = max(1, tot["frames"])
        return {"loss": tot["loss_sum"] / n, "acc": tot["correct"] / n, "frames": tot["frames"]}

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        from tqdm import tqdm

        cfg = self.cfg
        log.info("model: %s %s, %.2f M parameters, device %s, amp %s", cfg.role, self.model_cfg,
                 self.model.num_parameters() / 1e6, self.device, self.amp)
        stopped = "done"
        while self.epoch < cfg.num_epochs:
            if self.sched.stop:
                stopped = "newbob"
                break
            epoch = self.epoch
            n_batches, batches = self.epoch_batches(epoch, self.batch_in_epoch)
            ep = {"loss_sum": 0.0, "frames": 0, "correct": 0, "t0": time.perf_counter()}
            win = {"loss_sum": 0.0, "frames": 0, "correct": 0, "t0": time.perf_counter()}
            bar = tqdm(total=n_batches, initial=self.batch_in_epoch, desc=f"epoch {epoch + 1}/{cfg.num_epochs}",
                       unit="batch", disable=not cfg.progress, mininterval=1.0, dynamic_ncols=True)
            hit_max = False
            for batch, lr_mult in batches:
                batch_idx = self.batch_in_epoch
                batch = batch_to(batch, self.device, non_blocking=True)
                st = self.train_step(batch, batch_idx, lr_mult)
                self.batch_in_epoch += 1
                for acc in (ep, win):
                    for k in ("loss_sum", "frames", "correct"):
                        acc[k] += st[k]
                    if self.kind_names:
                        kd = acc.setdefault("kinds", {}).setdefault(st["kind"], {"loss_sum": 0.0, "frames": 0,
                                                                                 "correct": 0, "batches": 0})
                        for k in ("loss_sum", "frames", "correct"):
                            kd[k] += st[k]
                        kd["batches"] += 1
                bar.update(1)
                if self.step % max(1, cfg.log_every) == 0:
                    dt = time.perf_counter() - win["t0"]
                    n = max(1, win["frames"])
                    fps = win["frames"] / max(dt, 1e-9)
                    bar.set_postfix(loss=f"{win['loss_sum'] / n:.3f}", acc=f"{win['correct'] / n:.3f}",
                                    lr=f"{st['lr']:.2e}", fps=f"{fps:.0f}", refresh=False)
                    if self.tb is not None:
                        self.tb.add_scalar("train/loss", win["loss_sum"] / n, self.step)
                        self.tb.add_scalar("train/frame_acc", win["correct"] / n, self.step)
                        self.tb.add_scalar("train/lr", st["lr"], self.step)
                        self.tb.add_scalar("train/frames_per_s", fps, self.step)
                        if math.isfinite(st["grad_norm"]):
                            self.tb.add_scalar("train/grad_norm", st["grad_norm"], self.step)
                        for kind, kd in win.get("kinds", {}).items():
                            name, nk = self.kind_names.get(kind, kind), max(1, kd["frames"])
                            self.tb.add_scalar(f"train_{name}/loss", kd["loss_sum"] / nk, self.step)
                            self.tb.add_scalar(f"train_{name}/frame_acc", kd["correct"] / nk, self.step)
                    win = {"loss_sum": 0.0, "frames": 0, "correct": 0, "t0": time.perf_counter()}
                if cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0:
                    self.save(f"checkpoint-{self.step}.pt")
                if self.step_hook is not None:
                    self.step_hook(self.step)
                if cfg.max_steps and self.step >= cfg.max_steps:
                    hit_max = True
                    break
            bar.close()
            if hit_max:
                if not (cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0):
                    self.save(f"checkpoint-{self.step}.pt")
                stopped = "max_steps"
                self._epoch_line(ep, None, partial=True)
                break
            dev = self.evaluate() if self.dev_set is not None else None
            if dev is not None:
                self.sched.epoch_end(dev["loss"])
                if self.tb is not None:
                    self.tb.add_scalar("dev/loss", dev["loss"], self.step)
                    self.tb.add_scalar("dev/frame_acc", dev["acc"], self.step)
                if dev["acc"] > self.best["dev_acc"]:
                    self.best = {"dev_acc": dev["acc"], "dev_loss": dev["loss"], "step": self.step,
                                 "epoch": epoch + 1}
                    save_checkpoint(self.out_dir / "best.pt", {
                        "model_config": self.model_cfg.to_dict(), "model": self.model.state_dict(),
                        "step": self.step, "epoch": epoch + 1, "dev": dev, "train_config": cfg.to_dict()})
            self.history.append(self._epoch_line(ep, dev))
            self.epoch += 1
            self.batch_in_epoch = 0
            self.save(f"epoch-{self.epoch}.pt")
            with open(self.out_dir / "history.jsonl", "a") as f:
                f.write(json.dumps(self.history[-1]) + "\n")
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        return TrainResult(self.out_dir, self.step, self.epoch, self.best["dev_acc"], self.history, stopped)

    def _epoch_line(self, ep: Dict, dev: Optional[Dict], partial: bool = False) -> Dict:
        wall = time.perf_counter() - ep["t0"]
        n = max(1, ep["frames"])
        line = {"epoch": self.epoch + 1, "step": self.step, "train_loss": ep["loss_sum"] / n,
                "train_acc": ep["correct"] / n, "frames": ep["frames"], "seconds": round(wall, 2),
                "frames_per_s": ep["frames"] / max(wall, 1e-9), "lr": self.sched.lr(self.step)}
        for kind, kd in ep.get("kinds", {}).items():
            name, nk = self.kind_names.get(kind, kind), max(1, kd["frames"])
            line.update({f"train_loss_{name}": kd["loss_sum"] / nk, f"train_acc_{name}": kd["correct"] / nk,
                         f"frames_{name}": kd["frames"], f"batches_{name}": kd["batches"]})
        if dev is not None:
            line.update(dev_loss=dev["loss"], dev_acc=dev["acc"])
        msg = (f"epoch {line['epoch']}{' (partial)' if partial else ''}: step {self.step}, "
               f"train loss {line['train_loss']:.4f} acc {line['train_acc']:.4f}")
        for kind in ep.get("kinds", {}):
            name = self.kind_names.get(kind, kind)
            msg += f" ({name} loss {line[f'train_loss_{name}']:.4f} acc {line[f'train_acc_{name}']:.4f})"
        if dev is not None:
            msg += f", dev loss {dev['loss']:.4f} acc {dev['acc']:.4f} (best {self.best['dev_acc']:.4f})"
        msg += f", lr {line['lr']:.2e}, {ep['frames']} frames in {wall:.1f} s, {line['frames_per_s']:.0f} frames/s"
        log.info(msg)
        return line


def _to_yaml(d: Dict) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def train(cfg: TrainConfig, train_cuts, dev_cuts, cmvn, out_dir: Union[str, Path],
          step_hook: Optional[Callable[[int], None]] = None, resume: bool = True) -> TrainResult:
    """Train (or resume) in ``out_dir``. ``train_cuts`` / ``dev_cuts``: manifest paths or CutSets;
    ``cmvn``: ``data/cmvn.npz`` path, CmvnStats or None (no normalisation)."""
    from asrkit.features.reader import FeatureReader

    reader = FeatureReader(cmvn, stack=True)
    return Trainer(cfg, train_cuts, dev_cuts, reader, out_dir, step_hook=step_hook, resume=resume).run()
