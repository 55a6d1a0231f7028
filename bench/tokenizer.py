"""The one tokenizer path every runtime shares, so all runtimes see byte-identical input ids.

Built on HF `tokenizers` (Rust, framework-free) from an artifact's `tokenizer.json` or `vocab.txt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import models, normalizers, pre_tokenizers, processors

from bench.errors import UsageError


@dataclass(frozen=True)
class Encoded:
    """Token ids as int64 numpy arrays of shape (batch, seq_len); what every adapter's encode starts from."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)  # type: ignore[return-value]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}


class Tokenizer:
    """WordPiece tokenizer with BERT's special tokens, truncation and padding.

    `vocab_size` clamps ids a stand-in tokenizer produces beyond a model's vocabulary to [UNK]
    (e.g. the uncased vocab driving a cased-shape model); clamping is recorded by the artifact.
    """

    def __init__(self, tok: _HFTokenizer, vocab_size: int | None = None):
        self._tok = tok
        self.unk_id = tok.token_to_id("[UNK]")
        self.pad_id = tok.token_to_id("[PAD]") or 0
        self.vocab_size = vocab_size

    @classmethod
    def from_dir(cls, path: str | Path, vocab_size: int | None = None) -> Tokenizer:
        path = Path(path)
        if (path / "tokenizer.json").is_file():
            try:
                tok = _HFTokenizer.from_file(str(path / "tokenizer.json"))
            except Exception as exc:
                raise UsageError(f"{path / 'tokenizer.json'}: unreadable tokenizer ({exc})") from exc
        elif (path / "vocab.txt").is_file():
            tok = _wordpiece_from_vocab(path / "vocab.txt")
        else:
            raise UsageError(f"{path}: no tokenizer.json or vocab.txt")
        tok.no_padding()
        tok.no_truncation()
        return cls(tok, vocab_size)

    def encode(self, texts: list[str], pairs: list[str] | None = None, max_length: int = 128,
               pad_to_max: bool = True) -> Encoded:
        """Encode a batch; pads to `max_length` (fixed shapes for timing) or to the longest sequence."""
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError("texts and pairs differ in length")
        self._tok.enable_truncation(max_length=max_length)
        if pad_to_max:
            self._tok.enable_padding(pad_id=self.pad_id, length=max_length)
        else:
            self._tok.enable_padding(pad_id=self.pad_id)
        inputs = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
        encs = self._tok.encode_batch(inputs)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        if self.vocab_size is not None:
            ids[ids >= self.vocab_size] = self.unk_id
        return Encoded(ids, np.array([e.attention_mask for e in encs], dtype=np.int64),
                       np.array([e.type_ids for e in encs], dtype=np.int64))

    def windows(self, texts: list[str], length: int) -> Encoded:
        """Running text packed into full windows of `length` tokens, [CLS] ... [SEP], no padding: the texts'
        tokens are joined in order and cut every length - 2 (the last partial window is dropped)."""
        self._tok.no_truncation()
        self._tok.no_padding()
        ids = np.fromiter((i for e in self._tok.encode_batch(list(texts), add_special_tokens=False) for i in e.ids),
                          dtype=np.int64)
        body = length - 2
        n = len(ids) // body
        rows = np.empty((n, length), dtype=np.int64)
        rows[:, 0], rows[:, -1] = self._tok.token_to_id("[CLS]"), self._tok.token_to_id("[SEP]")
        rows[:, 1:-1] = ids[:n * body].reshape(n, body)
        if self.vocab_size is not None:
            rows[rows >= self.vocab_size] = self.unk_id
        return Encoded(rows, np.ones_like(rows), np.zeros_like(rows))


def _wordpiece_from_vocab(vocab_file: Path) -> _HFTokenizer:
    """BERT uncased-style WordPiece tokenizer from a plain vocab.txt (tests build tiny ones)."""
    tok = _HFTokenizer(models.WordPiece.from_file(str(vocab_file), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise UsageError(f"{vocab_file}: vocabulary lacks [CLS]/[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return tok


def sample_sentences() -> list[str]:
    """Real English sentences shipped with the package: timing inputs and parity probes."""
    text = (Path(__file__).parent / "data" / "sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def filled_text(n_words: int = 600) -> str:
    """A long text from the shipped sentences, so fixed-length inputs are real tokens, not padding."""
    words: list[str] = []
    sentences = sample_sentences()
    while len(words) < n_words:
        for s in sentences:
            words.extend(s.split())
    return " ".join(words[:n_words])
