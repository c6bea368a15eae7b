"""asrkit: Kaldi-style recipes for semi-supervised teacher-student acoustic models."""
__version__ = "0.1.0"
