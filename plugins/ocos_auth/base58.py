"""Base58 (the Bitcoin alphabet, as Solana uses for addresses and signatures).

Written here rather than pulled in as a dependency: it is thirty lines, and the wallet
plugin needs only fixed, small sizes (32-byte keys, 64-byte signatures).
"""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Encode bytes; each leading zero byte becomes a leading '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(ALPHABET[rest])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str, *, max_length: int = 128) -> bytes:
    """Decode base58 text; `ValueError` names the first character outside the alphabet.

    `max_length` bounds the work (big-integer arithmetic grows with the square of the
    length), since the text usually comes straight from a client.
    """
    if len(text) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    number = 0
    for position, char in enumerate(text):
        value = _INDEX.get(char)
        if value is None:
            raise ValueError(f"{char!r} at position {position} is not a base58 character")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body
