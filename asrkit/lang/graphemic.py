"""Graphemic ("chenone"-style) lexicons: each word spelled as its sentencepiece word pieces.

A small BPE (or unigram) model is trained on the training text; a word's pronunciation is its piece
sequence, and the pieces are the phones. Pieces never cross words (sentencepiece splits on
whitespace), the first piece of a word carries sentencepiece's ``▁`` marker, so the phone sequence of
a word decodes back to the word (:meth:`GraphemicModel.decode`).

Pieces that would collide with the lang dir's reserved names (``SIL``, ``SPN``, ``<eps>``, ``#…``) are
escaped with a leading ``@`` (``@`` pieces themselves too), and unescaped on decoding.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Sequence, Union

from asrkit.lang.lexicon import SIL_PHONE, SPN_PHONE, Lexicon, LexiconError
from asrkit.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

_RESERVED = {SIL_PHONE, SPN_PHONE, "<eps>", "<unk>", "<s>", "</s>"}


def escape_piece(piece: str) -> str:
    if piece in _RESERVED or piece.startswith(("#", "@")):
        return "@" + piece
    return piece


def unescape_piece(phone: str) -> str:
    return phone[1:] if phone.startswith("@") else phone


@dataclass
class GraphemicModel:
    """A trained sentencepiece model used as a word → pieces speller."""

    model_proto: bytes

    def __post_init__(self) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(self.model_proto)

    @classmethod
    def train(
        cls,
        sentences: Iterable[Sequence[str]],
        vocab_size: int = 200,
        model_type: str = "bpe",
        seed: int = 0,
    ) -> "GraphemicModel":
        """Train on word sequences (one sentence each). ``vocab_size`` is an upper bound on small text."""
        import sentencepiece as spm

        lines = [" ".join(s) for s in sentences if s]
        if not lines:
            raise LexiconError("graphemic lexicon: no training text")
        chars = {c for line in lines for c in line if not c.isspace()}
        if hasattr(spm, "set_random_generator_seed"):
            spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=max(vocab_size, len(chars) + 4),
            model_type=model_type,
            character_coverage=1.0,
            hard_vocab_limit=False,
            split_digits=False,
            normalization_rule_name="identity",
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            num_threads=1,
            minloglevel=2,
        )
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "GraphemicModel":
        return cls(Path(path).read_bytes())

    def save(self, path: Union[str, Path]) -> None:
        atomic_write_bytes(path, self.model_proto)

    def phones(self) -> List[str]:
        """Every piece of the model except the control/unknown symbols, escaped: the phone set."""
        out = []
        for i in range(self.sp.GetPieceSize()):
            if self.sp.IsControl(i) or self.sp.IsUnknown(i) or self.sp.IsUnused(i):
                continue
            out.append(escape_piece(self.sp.IdToPiece(i)))
        return out

    def spell(self, word: str) -> List[str]:
        """The pieces of one word (escaped). A character the model never saw raises LexiconError."""
        ids = self.sp.EncodeAsIds(word)
        if any(self.sp.IsUnknown(i) for i in ids):
            raise LexiconError(f"graphemic lexicon: word {word!r} has characters unseen in the training text")
        pieces = [escape_piece(self.sp.IdToPiece(i)) for i in ids]
        if not pieces:
            raise LexiconError(f"graphemic lexicon: word {word!r} has no pieces")
        return pieces

    def decode(self, phones: Sequence[str]) -> str:
        """Pieces (escaped) back to text: the inverse of :meth:`spell` (word sequences too)."""
        return self.sp.DecodePieces([unescape_piece(p) for p in phones])

    def lexicon(self, words: Iterable[str]) -> Lexicon:
        lex = Lexicon()
        for w in words:
            pron = self.spell(w)
            back = self.decode(pron)
            if back != w:
                raise LexiconError(f"graphemic lexicon: round trip of {w!r} gave {back!r}")
            lex.add(w, pron)
        return lex
