"""Stage 10: teacher pseudo-labels at scale (top-k shards), the distillation loss, batch schedules.

* :mod:`asrkit.pseudo.shards`: the shard format (ids uint16 + probs float16 + mass, mmap-able), the
  writer, blake2b checksums, :class:`PseudoLabelReader` for training;
* :mod:`asrkit.pseudo.label`: :func:`label_cuts` (batched teacher inference into shards, ``JOB=1:N``
  jobs, resumable, deterministic) and :func:`merge_indices`;
* :mod:`asrkit.pseudo.stats`: per-shard and total statistics;
* :mod:`asrkit.pseudo.loss`: :func:`topk_distillation_loss`;
* :mod:`asrkit.pseudo.schedule`: interleaved / segregated schedules of labelled and machine batches.
"""
from asrkit.pseudo.label import LabelPlan, PlanMismatchError, label_cuts, merge_indices, topk_posteriors
from asrkit.pseudo.loss import dense_distillation_loss, hard_ce_loss, topk_distillation_loss
from asrkit.pseudo.schedule import (LABELLED, MACHINE, Schedule, ScheduleConfig, ScheduledBatch, iter_schedule,
                                    make_schedule)
from asrkit.pseudo.shards import (ChecksumError, LabelMismatchError, PseudoLabelReader, Shard, ShardError,
                                  file_checksum, load_index, tree_checksum, write_shard)
from asrkit.pseudo.stats import LabelStats

__all__ = [
    "LabelPlan", "PlanMismatchError", "label_cuts", "merge_indices", "topk_posteriors",
    "dense_distillation_loss", "hard_ce_loss", "topk_distillation_loss",
    "LABELLED", "MACHINE", "Schedule", "ScheduleConfig", "ScheduledBatch", "iter_schedule", "make_schedule",
    "ChecksumError", "LabelMismatchError", "PseudoLabelReader", "Shard", "ShardError", "file_checksum",
    "load_index", "tree_checksum", "write_shard", "LabelStats",
]
