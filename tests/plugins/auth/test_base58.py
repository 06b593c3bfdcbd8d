"""The base58 codec the wallet plugin uses for addresses and signatures."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocos_auth.base58 import b58decode, b58encode

VECTORS = [
    (b"", ""),
    (b"\0", "1"),
    (b"hello world", "StV1DL6CwTryKyV"),
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    (bytes(32), "1" * 32),  # Solana's system program address
]


@pytest.mark.parametrize("raw, text", VECTORS)
def test_known_vectors(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


@given(st.binary(max_size=96))
def test_round_trip(raw: bytes) -> None:
    assert b58decode(b58encode(raw), max_length=200) == raw


@pytest.mark.parametrize("text, problem", [
    ("abc0", "'0' at position 3"),
    ("O", "'O' at position 0"),
    ("Il", "'I' at position 0"),
    ("ab+c", "'+' at position 2"),
])
def test_characters_outside_the_alphabet(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        b58decode(text)


def test_length_bounded_before_any_arithmetic() -> None:
    with pytest.raises(ValueError, match="longer than 128"):
        b58decode("2" * 129)
