"""Shared builders for the model's unit tests: a small table and a tiny trained interpreter.

Built once per test session (``functools.cache``): training even the tiny
encoder takes a few seconds.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import torch

from model.embedding import build_tiny_encoder
from model.interpreter import AnswerInterpreter, InterpreterConfig, train_interpreter
from model.knowledge_base import KnowledgeBase, from_rows
from model.phrasing import TRAIN_PHRASINGS_PATH, load_phrasings

TINY_EPOCHS = 30


def tiny_knowledge_base(n_nouns: int = 24, n_questions: int = 16, seed: int = 0) -> KnowledgeBase:
    """A random table whose rows differ enough for games to end in a guess."""
    rng = np.random.default_rng(seed)
    questions = [(f"q{index}", f"Is it like thing {index}?") for index in range(n_questions)]
    rows = [
        (f"noun{index}", "thing", rng.choice([0.0, 0.25, 0.75, 1.0], size=n_questions).tolist())
        for index in range(n_nouns)
    ]
    return from_rows(questions, rows)


@functools.cache
def tiny_interpreter() -> AnswerInterpreter:
    """The tiny from-scratch encoder and its head, trained on the real training phrasings."""
    torch.set_num_threads(1)
    phrasings = load_phrasings(TRAIN_PHRASINGS_PATH)
    folder = Path(tempfile.mkdtemp(prefix="twentyq-tiny-"))
    encoder = build_tiny_encoder(phrasings.texts, folder, hidden_size=64)
    config = InterpreterConfig("tiny", hidden_size=32, learning_rate=3e-3, cache_size=64)
    return train_interpreter(encoder, phrasings, config, epochs=TINY_EPOCHS, fine_tune_encoder=True)
