"""Argument blocks and helpers shared by several tools of asrkit.bin (not tools themselves).

* :mod:`asrkit.bin.common.training`: the TrainConfig flags, config loading and launch of train_nnet and
  train_student;
* :mod:`asrkit.bin.common.systems`: how a tool names a trained system of a recipe (export_model,
  decode_data).
"""
