import json
import pytest

from stats_kit import parse_duration, slugify, word_counts


@pytest.mark.parametrize("raw, slug", [("Hello, World!", "hello-world"), ("  forkd  VMs ", "forkd-vms"), ("a--b", "a-b")])
def test_slugify(raw, slug):
    assert slugify(raw) == slug


def test_word_counts_top():
    assert word_counts("the cat and the hat and the bat", top=2) == [("the", 3), ("and", 2)]


@pytest.mark.parametrize("s, secs", [("1h30m", 5400), ("45s", 45), ("2m5s", 125)])
def test_parse_duration(s, secs):
    assert parse_duration(s) == secs


def test_parse_duration_rejects_garbage():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_json_roundtrip():
    doc = {"a": [1, 2, {"b": None}], "c": "é"}
    assert json.loads(json.dumps(doc)) == doc
