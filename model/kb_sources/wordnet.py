"""A small reader for the WordNet 3.0 noun database (``data.noun`` / ``index.noun``).

Only what the knowledge base needs: synsets by name (``dog.n.01``), their
hypernyms (taxonomy) and part meronyms (parts). The format is documented in
WordNet's ``wndb(5)`` manual page; Debian's ``wordnet-base`` package installs
the files under ``/usr/share/wordnet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.errors import ModelPermanentError

DEFAULT_WORDNET_DIRECTORY = Path("/usr/share/wordnet")
INSTALL_HINT = (
    "WordNet 3.0 is needed to build the knowledge base. Install Debian's package with "
    "`apt-get update && apt-get install -y wordnet-base` (files land in /usr/share/wordnet), "
    "or pass --wordnet-dir DIR pointing at a folder holding data.noun and index.noun."
)
_HYPERNYM_POINTERS = frozenset({"@", "@i"})
_PART_POINTERS = frozenset({"%p"})


class WordNetError(ModelPermanentError):
    """Raised when the WordNet files are missing or a synset name does not resolve."""


@dataclass(frozen=True)
class Synset:
    """One noun synset: its offset, lemmas, direct hypernyms and direct parts."""

    offset: int
    lemmas: tuple[str, ...]
    hypernyms: tuple[int, ...]
    parts: tuple[int, ...]
    gloss: str


class WordNet:
    """The noun half of WordNet, parsed into memory once."""

    def __init__(self, synsets: dict[int, Synset], senses: dict[str, tuple[int, ...]]) -> None:
        self._synsets = synsets
        self._senses = senses
        self._ancestor_cache: dict[int, frozenset[int]] = {}

    def synset(self, name: str) -> Synset:
        """Return the synset named ``lemma.n.NN`` (NN: the 1-based sense number)."""
        try:
            lemma, pos, number = name.rsplit(".", 2)
            sense = int(number)
        except ValueError as error:
            raise WordNetError(f"bad synset name {name!r}: write it as lemma.n.01") from error
        offsets = self._senses.get(lemma.lower().replace(" ", "_"), ())
        if pos != "n" or not 1 <= sense <= len(offsets):
            raise WordNetError(
                f"WordNet has no noun sense {name!r} ({len(offsets)} noun senses of {lemma!r}); "
                "fix the synset name in model/data/sources"
            )
        return self._synsets[offsets[sense - 1]]

    def ancestors(self, offset: int) -> frozenset[int]:
        """Return the synset itself and every hypernym above it (transitively)."""
        cached = self._ancestor_cache.get(offset)
        if cached is None:
            found = {offset}
            for parent in self._synsets[offset].hypernyms:
                found |= self.ancestors(parent)
            cached = frozenset(found)
            self._ancestor_cache[offset] = cached
        return cached

    def is_a(self, offset: int, category: int) -> bool:
        """Say whether the synset at ``offset`` is ``category`` or a kind of it."""
        return category in self.ancestors(offset)

    def parts(self, offset: int) -> frozenset[int]:
        """Return the parts of a synset, including parts every kind above it has."""
        return frozenset(
            part for ancestor in self.ancestors(offset) for part in self._synsets[ancestor].parts
        )

    def has_part(self, offset: int, category: int) -> bool:
        """Say whether the synset has a part that is ``category`` or a kind of it."""
        return any(self.is_a(part, category) for part in self.parts(offset))


def _parse_data_line(line: str) -> Synset:
    fields, _, gloss = line.partition("|")
    tokens = fields.split()
    word_count = int(tokens[3], 16)
    lemmas = tuple(tokens[4 + 2 * index] for index in range(word_count))
    position = 4 + 2 * word_count
    pointer_count = int(tokens[position])
    hypernyms: list[int] = []
    parts: list[int] = []
    for index in range(pointer_count):
        symbol, target, pos = tokens[position + 1 + 4 * index : position + 4 + 4 * index]
        if pos != "n":
            continue
        if symbol in _HYPERNYM_POINTERS:
            hypernyms.append(int(target))
        elif symbol in _PART_POINTERS:
            parts.append(int(target))
    return Synset(int(tokens[0]), lemmas, tuple(hypernyms), tuple(parts), gloss.strip())


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="latin-1")
    except FileNotFoundError as error:
        raise WordNetError(f"{path} not found. {INSTALL_HINT}") from error
    # Lines starting with two spaces are the licence header.
    return [line for line in text.splitlines() if line and not line.startswith("  ")]


def load_wordnet(directory: Path = DEFAULT_WORDNET_DIRECTORY) -> WordNet:
    """Parse ``data.noun`` and ``index.noun`` from ``directory``."""
    synsets = {
        synset.offset: synset
        for synset in map(_parse_data_line, _read_lines(directory / "data.noun"))
    }
    senses: dict[str, tuple[int, ...]] = {}
    for line in _read_lines(directory / "index.noun"):
        tokens = line.split()
        synset_count = int(tokens[2])
        senses[tokens[0]] = tuple(int(offset) for offset in tokens[-synset_count:])
    return WordNet(synsets, senses)


def read_licence(directory: Path = DEFAULT_WORDNET_DIRECTORY) -> str:
    """Return the licence notice WordNet prints at the top of ``data.noun``."""
    try:
        with (directory / "data.noun").open(encoding="latin-1") as handle:
            header = [line[2:].rstrip() for line in handle if line.startswith("  ")]
    except FileNotFoundError as error:
        raise WordNetError(f"{directory / 'data.noun'} not found. {INSTALL_HINT}") from error
    # Each header line is numbered ("  1 This software ..."); drop the number.
    return "\n".join(line.split(" ", 1)[1] if " " in line else "" for line in header) + "\n"
