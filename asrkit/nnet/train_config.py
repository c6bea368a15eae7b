"""What a training run is configured with: :class:`TrainConfig` (every field is also a flag of
asrkit.bin.train_nnet / train_student) and the network it trains (:func:`model_config_of`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional

from asrkit.nnet.models import ModelConfig
from asrkit.nnet.presets import preset


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
    # where a student's training batches come from (asrkit.nnet.shard_loader): manifests (the default:
    # the seeded whole-epoch bucketing) | shards (train_student --labelled-shards/--machine-shards:
    # sequential training shards, a streaming bucketing sampler; other batches, memory flat in the cuts)
    loader: str = "manifests"
    shuffle_buffer: int = 1000  # shards loader: chunks waiting in the bucketing buffer (their cuts' data too)
    # optimisation
    num_epochs: int = 10
    optimizer: str = "adam"  # adam | adamw | sgd
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
    label_smoothing: float = 0.0  # hard targets only (F.cross_entropy's); dev loss is always plain CE
    # SpecAugment of training batches (asrkit.nnet.specaug): off while both mask counts are 0
    specaug_time_masks: int = 0
    specaug_time_width: int = 20  # 10 ms frames
    specaug_freq_masks: int = 0
    specaug_freq_width: int = 8  # log-mel bins
    specaug_time_max_fraction: float = 0.2
    # feature normalisation (asrkit.features.reader): global (data/cmvn.npz) | speaker | utterance
    cmvn_mode: str = "global"
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
    # a budget: train exactly this many updates (num_epochs then only sizes the schedule's epochs), the
    # last epoch cut where it ends and validated there as at an epoch end; 0: num_epochs whole epochs
    max_updates: int = 0
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
