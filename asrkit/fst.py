"""The one place that imports the FST stack, in the order that does not freeze the process.

With kaldifst 1.7.17, importing kaldilm before kaldifst / kaldi_hmm_gmm / kaldi_decoder hangs on a lock
while the FST library loads. Every asrkit module that needs any of them imports them from here.
"""
import kaldifst  # noqa: F401  (first: loads the FST library)
import kaldi_hmm_gmm  # noqa: F401
import kaldi_decoder  # noqa: F401
import kaldilm  # noqa: F401  (only after the three above)

__all__ = ["kaldifst", "kaldi_hmm_gmm", "kaldi_decoder", "kaldilm"]
