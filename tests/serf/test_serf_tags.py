"""Serf tags in memberlist Meta."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimguard.serf import decode_tags, encode_tags


def test_captured_meta_decodes() -> None:
    # From serf agent "b" started with -tag role=web -tag dc=x (memberlist-plain-captured.json).
    assert decode_tags(bytes.fromhex("ff82a4726f6c65a3776562a26463a178")) == {
        "role": "web",
        "dc": "x",
    }
    assert decode_tags(bytes.fromhex("ff81a4726f6c65a26462")) == {"role": "db"}


def test_encoding_matches_go_for_one_tag_and_no_tags() -> None:
    assert encode_tags({"role": "db"}) == bytes.fromhex("ff81a4726f6c65a26462")
    assert encode_tags({}) == b"\xff\x80"


@pytest.mark.parametrize(
    ("meta", "tags"),
    [
        (b"", {"role": ""}),
        (None, {"role": ""}),
        (b"web", {"role": "web"}),  # protocol 2: bare role
        (b"\xfe\x80", {"role": "\ufffd\ufffd"}),
        (b"\xff", {}),
        (b"\xff\xc1", {}),
        (b"\xff\x93\x01\x02\x03", {}),
        (b"\xff\x82\xa1a\xa1b\xa1c\x05", {"a": "b"}),  # non-string value skipped
        (b"\xff\x81\xa1a\xa1b\xde\xad", {"a": "b"}),  # trailing garbage ignored, as Go does
    ],
)
def test_decode_follows_serf_rules_and_never_raises(
    meta: bytes | None, tags: dict[str, str]
) -> None:
    assert decode_tags(meta) == tags


def test_oversized_tags_refused() -> None:
    with pytest.raises(ValueError, match="512"):
        encode_tags({"k": "v" * 600})


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=8))
def test_round_trip(tags: dict[str, str]) -> None:
    assert decode_tags(encode_tags(tags)) == tags


@given(st.binary(max_size=100))
def test_fuzz(meta: bytes) -> None:
    assert isinstance(decode_tags(meta), dict)
