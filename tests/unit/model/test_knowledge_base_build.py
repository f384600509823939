"""Building the knowledge base: the WordNet reader, the authored tables and the build script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model import knowledge_base_build
from model.kb_sources.authored import SourceTableError, parse_tags, read_sources
from model.kb_sources.wordnet import (
    DEFAULT_WORDNET_DIRECTORY,
    WordNetError,
    load_wordnet,
    read_licence,
)
from model.knowledge_base import DEFAULT_DATA_DIRECTORY, load_knowledge_base

# A miniature WordNet in the real file format: dog -> animal -> entity, animals have
# tails, cars have car wheels (a kind of wheel).
_DATA_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by
  2 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.
00000001 03 n 01 entity 0 000 | that which exists
00000002 05 n 01 animal 0 002 @ 00000001 n 0000 %p 00000005 n 0000 | a living organism
00000003 05 n 01 dog 0 001 @ 00000002 n 0000 | a domestic canine
00000004 06 n 02 car 0 auto 0 002 @ 00000001 n 0000 %p 00000006 n 0000 | a motor vehicle
00000005 08 n 01 tail 0 001 @ 00000001 n 0000 | the rear appendage
00000006 06 n 01 car_wheel 0 001 @ 00000007 n 0000 | a wheel of a car
00000007 06 n 01 wheel 0 001 @ 00000001 n 0000 | a circular frame
"""
_INDEX_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by
animal n 1 2 @ %p 1 0 00000002
auto n 1 2 @ %p 1 0 00000004
car n 1 2 @ %p 1 0 00000004
car_wheel n 1 1 @ 1 0 00000006
dog n 1 1 @ 1 0 00000003
entity n 1 0 1 0 00000001
tail n 1 1 @ 1 0 00000005
wheel n 1 1 @ 1 0 00000007
"""


@pytest.fixture
def wordnet_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "wordnet"
    directory.mkdir()
    (directory / "data.noun").write_text(_DATA_NOUN, encoding="latin-1")
    (directory / "index.noun").write_text(_INDEX_NOUN, encoding="latin-1")
    return directory


@pytest.fixture
def sources_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sources"
    directory.mkdir()
    (directory / "questions.csv").write_text(
        "id,text,source,rule\n"
        "is_animal,Is it an animal?,wordnet,is_a:animal.n.01\n"
        "has_wheels,Does it have wheels?,wordnet,has_part:wheel.n.01\n"
        "has_tail,Does it have a tail?,wordnet,has_part:tail.n.01\n"
        "bigger_than_microwave,Is it bigger than a microwave?,authored,size_above:4\n"
        "is_pet,Do people keep it as a pet?,authored,\n"
    )
    (directory / "kinds.csv").write_text("kind,tags\nanimal,is_pet:0.3\nvehicle,\n")
    (directory / "nouns.csv").write_text(
        "noun,kind,synset,size,tags\n"
        "dog,animal,,3.8,is_pet\n"
        "car,vehicle,auto.n.01,6,\n"
        "robot dog,animal,dog.n.01,2,has_tail:0.5 is_animal:0.2\n"
    )
    return directory


def test_wordnet_reader_follows_hypernyms_and_inherited_parts(wordnet_dir: Path) -> None:
    wordnet = load_wordnet(wordnet_dir)
    dog, animal = wordnet.synset("dog.n.01"), wordnet.synset("animal.n.01")
    assert wordnet.is_a(dog.offset, animal.offset)
    assert not wordnet.is_a(animal.offset, dog.offset)
    # The dog inherits the tail every animal has; the car's part is a kind of wheel.
    assert wordnet.has_part(dog.offset, wordnet.synset("tail.n.01").offset)
    assert wordnet.has_part(wordnet.synset("car.n.01").offset, wordnet.synset("wheel.n.01").offset)
    assert wordnet.synset("auto.n.01").lemmas == ("car", "auto")


def test_wordnet_reader_names_bad_synsets(wordnet_dir: Path) -> None:
    wordnet = load_wordnet(wordnet_dir)
    with pytest.raises(WordNetError, match=r"no noun sense 'dog\.n\.02'"):
        wordnet.synset("dog.n.02")
    with pytest.raises(WordNetError, match=r"lemma\.n\.01"):
        wordnet.synset("dog")


def test_licence_notice_is_read_from_the_data_file(wordnet_dir: Path) -> None:
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in read_licence(wordnet_dir)


def test_tags_parse_with_and_without_values() -> None:
    assert parse_tags("is_pet is_brown:0.5", "here") == {"is_pet": 1.0, "is_brown": 0.5}
    with pytest.raises(SourceTableError, match="here"):
        parse_tags("is_pet:1.5", "here")
    with pytest.raises(SourceTableError, match="no number"):
        parse_tags("is_pet:yes", "here")


def test_tags_must_name_a_question(sources_dir: Path) -> None:
    nouns = sources_dir / "nouns.csv"
    nouns.write_text(nouns.read_text() + "cat,animal,,3,is_fluffy\n")
    with pytest.raises(SourceTableError, match="is_fluffy"):
        read_sources(sources_dir)


def test_build_lets_tags_override_kinds_and_wordnet(wordnet_dir: Path, sources_dir: Path) -> None:
    kb = knowledge_base_build.build_knowledge_base(
        load_wordnet(wordnet_dir), read_sources(sources_dir)
    )
    table = {
        (noun, q): round(float(kb.p_yes[kb.noun_index(noun), kb.question_index(q)]), 2)
        for noun in kb.nouns
        for q in kb.question_ids
    }
    assert table["dog", "is_animal"] == 1.0 and table["car", "is_animal"] == 0.0
    assert table["car", "has_wheels"] == 1.0 and table["dog", "has_tail"] == 1.0
    assert table["robot dog", "is_animal"] == 0.2 and table["robot dog", "has_tail"] == 0.5
    assert table["dog", "is_pet"] == 1.0 and table["robot dog", "is_pet"] == 0.3
    # Size 3.8 is just under the microwave's 4: soft, not a hard no.
    assert table["dog", "bigger_than_microwave"] == 0.3
    assert table["car", "bigger_than_microwave"] == 1.0


def test_main_writes_table_and_licence(
    wordnet_dir: Path, sources_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    arguments = [
        "--wordnet-dir",
        str(wordnet_dir),
        "--sources-dir",
        str(sources_dir),
        "--output-dir",
        str(output),
        "--allow-problems",
    ]
    assert knowledge_base_build.main(arguments) == 0
    assert load_knowledge_base(output).nouns == ("dog", "car", "robot dog")
    assert "Princeton University" in (output / "WORDNET_LICENSE").read_text()
    assert "3 nouns, 2 kinds, 5 questions (3 from WordNet)" in capsys.readouterr().out
    assert knowledge_base_build.main([*arguments, "--check"]) == 0
    (output / "knowledge_base.csv").write_text("noun,kind\n")
    assert knowledge_base_build.main([*arguments, "--check"]) == 1
    assert "knowledge_base.csv" in capsys.readouterr().err


def test_main_refuses_to_write_a_table_with_problems(
    wordnet_dir: Path, sources_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nouns = sources_dir / "nouns.csv"
    nouns.write_text(nouns.read_text() + "puppy,animal,dog.n.01,3.8,is_pet\n")
    output = tmp_path / "out"
    arguments = [
        "--wordnet-dir",
        str(wordnet_dir),
        "--sources-dir",
        str(sources_dir),
        "--output-dir",
        str(output),
    ]
    assert knowledge_base_build.main(arguments) == 1
    assert not output.exists()
    assert "nouns dog, puppy have identical rows" in capsys.readouterr().err


def test_missing_wordnet_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert knowledge_base_build.main(["--wordnet-dir", str(tmp_path / "absent")]) == 2
    assert "apt-get install -y wordnet-base" in capsys.readouterr().err


def test_build_regenerates_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    if not (DEFAULT_WORDNET_DIRECTORY / "data.noun").is_file():
        message = (
            f"WordNet 3.0 is not installed in {DEFAULT_WORDNET_DIRECTORY}; "
            "install it with `apt-get install -y wordnet-base`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert knowledge_base_build.main(["--output-dir", str(tmp_path)]) == 0
    for name in ("questions.csv", "knowledge_base.csv", "WORDNET_LICENSE"):
        assert (tmp_path / name).read_bytes() == (DEFAULT_DATA_DIRECTORY / name).read_bytes(), name
