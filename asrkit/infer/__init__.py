"""Using a trained system: what a recipe trained, out of its exp/ (docs: README, "Use a trained model").

* :mod:`asrkit.infer.model_dir` — portable model directories: export, load, refuse what does not match
* :mod:`asrkit.infer.frontend` — fbank, CMVN and stacking computed incrementally, equal to offline
* :mod:`asrkit.infer.audio` — audio files read as 16 kHz mono, bad inputs as named skips
* :mod:`asrkit.infer.recognizer` — offline and streaming recognition (network or GMM)
* :mod:`asrkit.infer.ctm` — word timings from a decoded path and the lexicon
* :mod:`asrkit.infer.transcribe` — a batch of files, skips counted, real-time factor, latency per chunk
* :mod:`asrkit.infer.systems`, :mod:`asrkit.infer.decode_data` — decoding any data set as the recipe does
* :mod:`asrkit.infer.torchscript` — a traced streaming student for deployment

Cheap to import: torch, lhotse and the decoders are imported by the modules that need them.
"""
