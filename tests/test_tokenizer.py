import numpy as np
import pytest

from bench.errors import UsageError
from bench.tokenizer import Tokenizer, filled_text, sample_sentences


def test_fixed_length_encoding_pads_and_truncates(vocab_dir):
    tok = Tokenizer.from_dir(vocab_dir)
    enc = tok.encode(["the film is good .", filled_text()], max_length=16)
    assert enc.shape == (2, 16)
    assert enc.input_ids.dtype == np.int64
    assert enc.attention_mask[0].sum() == 7  # [CLS] + 5 words + [SEP]
    assert enc.attention_mask[1].all()  # the filled text fills the whole length
    assert enc.input_ids[0, 0] == tok._tok.token_to_id("[CLS]")


def test_pairs_get_segment_ids(vocab_dir):
    enc = Tokenizer.from_dir(vocab_dir).encode(["the film"], ["was good"], max_length=12)
    assert list(enc.token_type_ids[0][:7]) == [0, 0, 0, 0, 1, 1, 1]


def test_dynamic_padding_pads_to_longest(vocab_dir):
    enc = Tokenizer.from_dir(vocab_dir).encode(["the", "the film is good"], max_length=64, pad_to_max=False)
    assert enc.shape == (2, 6)


def test_ids_beyond_the_model_vocabulary_are_clamped_to_unk(vocab_dir):
    tok = Tokenizer.from_dir(vocab_dir, vocab_size=8)
    enc = tok.encode(["the film is good"], max_length=8)
    assert enc.input_ids.max() < 8
    assert (enc.input_ids == tok.unk_id).sum() == 2  # "is" (id 8) and "good" (id 9)


def test_directory_without_tokenizer_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no tokenizer.json or vocab.txt"):
        Tokenizer.from_dir(tmp_path)


def test_shipped_sentences_are_real_text():
    sentences = sample_sentences()
    assert len(sentences) >= 30
    assert len(filled_text(500).split()) == 500
