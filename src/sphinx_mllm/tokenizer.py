"""SentencePiece tokenizer wrapper (LLaMA conventions: BOS 1, EOS 2, pad 0, BOS added by us)."""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm


class Tokenizer:
    """Thin wrapper over a loaded ``SentencePieceProcessor``; use :meth:`from_file` to read one."""

    pad_id = 0

    def __init__(self, processor: spm.SentencePieceProcessor, path: str | None = None):
        self.sp = processor
        self.path = path
        self.bos_id = processor.bos_id()
        self.eos_id = processor.eos_id()
        self.vocab_size = processor.get_piece_size()

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer model not found: {path}")
        return cls(spm.SentencePieceProcessor(model_file=str(path)), str(path))

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self.sp.encode(text)
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and each token's (start, end) *character* span in ``text``.

        Spans come from the pieces' surfaces (``▁`` = space, ``<0xNN>`` = one byte), which
        concatenate to the input text (plus SentencePiece's dummy-prefix space) for tokenizers
        with identity normalisation, as LLaMA's is. Other normalisations raise ``ValueError``.
        """
        ids = self.sp.encode(text)
        pieces = [self._piece_bytes(i) for i in ids]
        raw = text.encode("utf-8")
        joined = b"".join(pieces)
        shift = len(joined) - len(raw)
        if shift not in (0, 1) or joined[shift:] != raw:
            raise ValueError("tokenizer normalises text; token offsets are unavailable")
        byte_to_char = [0] * (len(raw) + 1)
        pos = 0
        for i, ch in enumerate(text):
            n = len(ch.encode("utf-8"))
            byte_to_char[pos:pos + n] = [i] * n
            pos += n
        byte_to_char[pos] = len(text)
        spans, pos = [], -shift
        for piece in pieces:
            a, b = max(pos, 0), max(pos + len(piece), 0)
            spans.append((byte_to_char[a], byte_to_char[b] if b < len(raw) else len(text)))
            pos += len(piece)
        return ids, spans

    def _piece_bytes(self, token_id: int) -> bytes:
        if self.sp.is_byte(token_id):
            return bytes([int(self.sp.id_to_piece(token_id)[1:-1], 16)])
        return self.sp.id_to_piece(token_id).replace("\u2581", " ").encode("utf-8")

    def decode(self, ids: list[int]) -> str:
        """Decode, dropping ids outside the vocabulary (e.g. from a random-weight model)."""
        return self.sp.decode([int(i) for i in ids if 0 <= i < self.vocab_size])
