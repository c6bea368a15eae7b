"""Stage 2: fbank / MFCC extraction and storage, the frame rule (stacking, labels), global CMVN, deltas.

Cheap to import: lhotse and torch are imported only by the functions that need them.
"""
from asrkit.features.cmvn import CmvnStats, accumulate_cmvn, apply_cmvn, compute_cmvn, load_cmvn, tile_cmvn
from asrkit.features.deltas import add_deltas, delta_windows
from asrkit.features.extract import (
    FeatureConfig,
    FeatureSummary,
    compute_features,
    extract_features,
    make_extractor,
    manifest_path,
    storage_dir,
)
from asrkit.features.reader import FeatureReader, load_frames, load_mfcc_with_deltas, load_stacked_features
from asrkit.features.stack import (
    FRAME_SHIFT,
    STACK,
    STACKED_FRAME_SHIFT,
    label_frame_indices,
    num_frames,
    num_frames_from_samples,
    num_stacked_frames,
    stack_frames,
    stack_labels,
    stacked_frame_indices,
)

__all__ = [
    "CmvnStats", "accumulate_cmvn", "apply_cmvn", "compute_cmvn", "load_cmvn", "tile_cmvn",
    "add_deltas", "delta_windows",
    "FeatureConfig", "FeatureSummary", "compute_features", "extract_features", "make_extractor",
    "manifest_path", "storage_dir",
    "FeatureReader", "load_frames", "load_mfcc_with_deltas", "load_stacked_features",
    "FRAME_SHIFT", "STACK", "STACKED_FRAME_SHIFT", "label_frame_indices", "num_frames",
    "num_frames_from_samples", "num_stacked_frames", "stack_frames", "stack_labels", "stacked_frame_indices",
]
