"""The answer interpreter: free text ("yep", "not really", "no idea") to an answer class.

A frozen sentence encoder (see :mod:`model.embedding`) embeds the text and a
small trained head picks one of the five answer classes. Canonical answers
("yes", "probably not", ...) never reach the transformer, and interpreted texts
are kept in a bounded LRU cache, so a game's repeated answers cost a dict look-up.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from model.embedding import SentenceEncoder, load_encoder
from model.errors import ModelPermanentError
from model.likelihood import ANSWER_CLASSES
from model.phrasing import Phrasings

ENCODER_FOLDER = "encoder"
HEAD_FILE = "head.safetensors"
CONFIG_FILE = "interpreter.json"


def normalise_text(text: str) -> str:
    """Lower-case, trim and collapse whitespace: the cache key and the canonical look-up."""
    return re.sub(r"\s+", " ", text.strip().lower())


# "probably not", "probably-not" and "probably_not" all name the same class.
CANONICAL_ANSWERS: dict[str, str] = {
    variant: answer
    for answer in ANSWER_CLASSES
    for variant in {answer, answer.replace("_", " "), answer.replace("_", "-")}
}


class AnswerHead(torch.nn.Module):
    """A one-hidden-layer classifier over sentence vectors."""

    def __init__(self, input_size: int, hidden_size: int, n_classes: int = len(ANSWER_CLASSES)):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Dropout(0.1),
            torch.nn.Linear(input_size, hidden_size),
            torch.nn.GELU(),
            torch.nn.Linear(hidden_size, n_classes),
        )

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Return class logits, ``[batch, n_classes]``."""
        logits: torch.Tensor = self.layers(vectors)
        return logits


@dataclass(frozen=True)
class InterpreterConfig:
    """What :func:`load_interpreter` needs besides the weights."""

    encoder_kind: str
    hidden_size: int
    max_length_tokens: int = 32
    cache_size: int = 4096
    learning_rate: float = 1e-2


class _LruCache:
    """A thread-safe bounded mapping that forgets the least recently used text first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class AnswerInterpreter:
    """Maps free-text answers to answer classes; thread-safe, batched, cached."""

    def __init__(
        self, encoder: SentenceEncoder, head: AnswerHead, config: InterpreterConfig
    ) -> None:
        self.encoder = encoder
        self.head = head.eval()
        self.config = config
        self.cache = _LruCache(config.cache_size)
        self.transformer_calls = 0

    def interpret(self, texts: Sequence[str]) -> list[str]:
        """Return the answer class of each text, in order; one encoder pass for the misses."""
        keys = [normalise_text(text) for text in texts]
        answers: dict[str, str] = {}
        misses: list[str] = []
        for key in dict.fromkeys(keys):
            known = CANONICAL_ANSWERS.get(key) or self.cache.get(key)
            if known is None:
                misses.append(key)
            else:
                answers[key] = known
        if misses:
            for key, answer in zip(misses, self._classify(misses), strict=True):
                self.cache.put(key, answer)
                answers[key] = answer
        return [answers[key] for key in keys]

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Class probabilities for each text (no cache, no canonical shortcut), ``[n, 5]``."""
        with torch.inference_mode():
            return torch.softmax(self.head(self.encoder.encode(list(texts))), dim=-1)

    def accuracy(self, texts: Sequence[str], answers: Sequence[str]) -> float:
        """Share of ``texts`` classified as ``answers`` (through the transformer, uncached)."""
        if not texts:
            return 0.0
        predicted = self._classify([normalise_text(text) for text in texts])
        return sum(p == a for p, a in zip(predicted, answers, strict=True)) / len(texts)

    def save(self, folder: Path) -> None:
        """Write encoder, head weights and config into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save(folder / ENCODER_FOLDER)
        save_file(self.head.state_dict(), str(folder / HEAD_FILE))
        config = {**self.config.__dict__, "answer_classes": list(ANSWER_CLASSES)}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

    def _classify(self, keys: Sequence[str]) -> list[str]:
        self.transformer_calls += 1
        indices = self.probabilities(keys).argmax(dim=-1).tolist()
        return [ANSWER_CLASSES[index] for index in indices]


def load_interpreter(folder: Path) -> AnswerInterpreter:
    """Load an interpreter written by :meth:`AnswerInterpreter.save`."""
    try:
        raw = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ModelPermanentError(
            f"cannot read the interpreter config in {folder}: {error}; retrain the model"
        ) from error
    if tuple(raw.pop("answer_classes", ())) != ANSWER_CLASSES:
        raise ModelPermanentError(
            f"the interpreter in {folder} was trained for other answer classes; retrain it"
        )
    config = InterpreterConfig(**raw)
    encoder = load_encoder(folder / ENCODER_FOLDER, config.max_length_tokens)
    head = AnswerHead(encoder.dimension, config.hidden_size)
    head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    return AnswerInterpreter(encoder, head, config)


def train_interpreter(
    encoder: SentenceEncoder,
    phrasings: Phrasings,
    config: InterpreterConfig,
    *,
    epochs: int = 500,
    fine_tune_encoder: bool = False,
    seed: int = 0,
) -> AnswerInterpreter:
    """Fit a head on the encoder's vectors of the phrasings (full batch, AdamW).

    MiniLM stays frozen and is run once; a from-scratch encoder carries no
    meaning yet, so ``fine_tune_encoder`` trains it together with the head.
    """
    torch.manual_seed(seed)
    texts = [normalise_text(text) for text in phrasings.texts]
    targets = torch.tensor([ANSWER_CLASSES.index(answer) for answer in phrasings.answers])
    head = AnswerHead(encoder.dimension, config.hidden_size)
    parameters = list(head.parameters())
    if fine_tune_encoder:
        parameters += list(encoder.encoder.parameters())
        encoder.encoder.train()
    frozen_vectors = None if fine_tune_encoder else encoder.encode(texts)
    optimiser = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=1e-2)
    loss_function = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    head.train()
    for _ in tqdm(range(epochs), desc="training the answer interpreter", unit="epoch"):
        vectors = encoder.embed(texts) if frozen_vectors is None else frozen_vectors
        optimiser.zero_grad()
        loss_function(head(vectors), targets).backward()
        optimiser.step()
    encoder.encoder.eval()
    return AnswerInterpreter(encoder, head, config)
