"""Stage 3: lexicons (corpus / CMUdict / espeak-ng G2P / graphemic word pieces), Kaldi lang dirs
(``data/lang`` three-state, ``data/lang_senone`` one-state, word-position-independent phones), n-gram
LMs (kaldingram) and G.fst (kaldilm).

Modules: :mod:`.lexicon`, :mod:`.g2p`, :mod:`.graphemic`, :mod:`.lang_dir`, :mod:`.lm`,
:mod:`.prepare`. FST packages are only ever imported through :mod:`asrkit.fst` (import order).
"""
