"""Stage 7-13 networks: BLSTM teacher / LSTM student, datasets and samplers over cuts, losses (CE,
top-k distillation), the training loop (checkpoints, resume, schedules) and inference for decoding.

Cheap to import: submodules are imported on first use (``asrkit.nnet.train`` etc.).
"""
from asrkit.nnet.models import LstmAcousticModel, ModelConfig, build_model, count_parameters_analytic
from asrkit.nnet.presets import PRESETS, ROLES, preset

__all__ = ["LstmAcousticModel", "ModelConfig", "build_model", "count_parameters_analytic", "PRESETS", "ROLES",
           "preset"]
