"""Intelligent Mail barcode (IMb) codec following USPS-B-3200.

The anonymizer has to recognise IMbs whether a log carries the human-readable digits or the
65-bar letter string a scanner emits, and it must never mistake a damaged barcode for a
different valid one.  Everything here is pure integer arithmetic so the codec can run on the
ingest path without I/O or third-party dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from anonymizer.errors import InvalidValueError

__all__ = ["Imb", "ImbError", "decode_bars", "encode_bars", "parse_digits", "parse_imb"]


class ImbError(InvalidValueError, ValueError):
    """Raised when text is not a well-formed Intelligent Mail barcode."""


_FRAME_CHECK_FAILED: Final = "frame check failed"
_TRACKING_LEN: Final = 20
_ROUTING_LENGTHS: Final = (0, 5, 9, 11)
_BAR_COUNT: Final = 65

# Routing codes of different lengths share one number space; USPS-B-3200 offsets each length
# past the largest value of the shorter ones so the length survives the round trip.
_ROUTING_OFFSET: Final[dict[int, int]] = {0: 0, 5: 1, 9: 100_001, 11: 1_000_100_001}
# One past the largest encodable routing value: 11 nines plus the 11-digit offset.
_ROUTING_LIMIT: Final = 10**11 + 1_000_100_001
# The tracking code contributes a factor of 10 * 5 * 10**18 (the second barcode-id digit is
# base 5 because it only ranges over 0-4).
_TRACKING_RADIX: Final = 10 * 5 * 10**18

_CRC_POLYNOMIAL: Final = 0x0F35
_DATA_BITS: Final = 102

_CODEWORD_A_FCS_OFFSET: Final = 659
_CODEWORD_J_RADIX: Final = 636
_CODEWORD_RADIX: Final = 1365
_CHAR_MASK: Final = 0x1FFF
_LETTERS: Final = "ABCDEFGHIJ"


def _n_of_13_table(n: int, size: int) -> tuple[int, ...]:
    """Build the codeword-to-character table the way USPS-B-3200 Appendix C does.

    Generating the table instead of pasting 1365 hex constants keeps it auditable: the
    ordering (pairs of a pattern and its bit-reversal from the front, palindromes from the
    back) is exactly what makes the codeword numbering match the published tables.
    """
    table = [0] * size
    lower, upper = 0, size - 1
    for count in range(1 << 13):
        if count.bit_count() != n:
            continue
        reverse = int(f"{count:013b}"[::-1], 2)
        if reverse < count:
            continue
        if reverse == count:
            table[upper] = count
            upper -= 1
        else:
            table[lower] = count
            table[lower + 1] = reverse
            lower += 2
    if lower != upper + 1:  # pragma: no cover - guards the construction, not runtime input
        raise AssertionError("n-of-13 table construction is inconsistent")
    return tuple(table)


_TABLE_5_OF_13: Final = _n_of_13_table(5, 1287)
_TABLE_2_OF_13: Final = _n_of_13_table(2, 78)
_CODEWORD_TO_CHAR: Final = _TABLE_5_OF_13 + _TABLE_2_OF_13
_CHAR_TO_CODEWORD: Final[dict[int, int]] = {char: cw for cw, char in enumerate(_CODEWORD_TO_CHAR)}

# USPS-B-3200 Table 22 (bar-to-character mapping), bars 1..65 left to right.  Each entry is
# "<descender character><bit><ascender character><bit>", kept in the spec's own notation so it
# can be checked against the printed table line by line.
_TABLE_22: Final = """
    H2E3 B10A0 J12C8 F5G11 I9D1 A1F12 C5B8 E4J11 G3I10 D9H6 F11B4 I5C12 J10A2 H1G7 D6E9 A3I6
    G4C7 B1J9 H10F2 E0D8 G2A4 I11B0 J8D12 C6H7 F1E10 B12G9 H3I0 F8J7 E6C10 D4A5 I4F7 H11B9
    G0J6 A6E8 C1D2 F9I12 E11G1 J5H4 D3B2 A7C0 B3E1 G10D5 I7J4 C11F6 A8H12 E2I1 F10D0 J3A9
    G5C4 H8B7 F0E5 C3A10 G12J2 D11B6 I8H9 F4A11 B5C2 J1E12 I3G6 H0D7 E7H5 A12B11 C9J0 G8F3
    D10I2
"""

_BarSource = tuple[int, int]  # (character index 0-9, bit 0-12)


def _parse_table_22(text: str) -> tuple[tuple[_BarSource, _BarSource], ...]:
    """Turn the spec-notation table into indices, failing loudly if it was mistyped.

    The checks make a transcription error (a duplicated or missing character bit) impossible
    to ship silently: every one of the 130 character bits must drive exactly one bar half.
    """
    entries: list[tuple[_BarSource, _BarSource]] = []
    for token in text.split():
        second = next(i for i in range(1, len(token)) if token[i].isalpha())
        halves = (token[:second], token[second:])
        descender, ascender = ((_LETTERS.index(h[0]), int(h[1:])) for h in halves)
        entries.append((descender, ascender))
    sources = [src for pair in entries for src in pair]
    expected = {(char, bit) for char in range(10) for bit in range(13)}
    if len(entries) != _BAR_COUNT or len(set(sources)) != len(sources) or set(sources) != expected:
        raise AssertionError("Table 22 transcription is inconsistent")  # pragma: no cover
    return tuple(entries)


_BAR_MAP: Final = _parse_table_22(_TABLE_22)
# (descender, ascender) -> letter, and its inverse for decoding.
_BAR_LETTER: Final[dict[tuple[bool, bool], str]] = {
    (False, False): "T",
    (True, False): "D",
    (False, True): "A",
    (True, True): "F",
}
_LETTER_HALVES: Final[dict[str, tuple[bool, bool]]] = {v: k for k, v in _BAR_LETTER.items()}


def _is_ascii_digits(text: str) -> bool:
    """str.isdigit() alone would accept superscripts and non-Latin digits that int() mangles."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class Imb:
    """One barcode's fields, validated on construction so an Imb in hand is always encodable.

    The field widths interlock (a 9-digit mailer id leaves 6 digits for the serial), and the
    mailer id's leading 9 is what tells a reader which split applies, so a 6-digit id starting
    with 9 is rejected: it could never be decoded back to itself.
    """

    barcode_id: str
    service_type: str
    mailer_id: str
    serial: str
    routing: str = ""

    def __repr__(self) -> str:  # the serial and routing code identify a mail piece and household
        return (
            f"Imb(barcode_id={self.barcode_id!r}, service_type={self.service_type!r}, "
            f"mailer_id={self.mailer_id!r}, serial=<redacted>, routing=<redacted>)"
        )

    def __post_init__(self) -> None:
        if len(self.barcode_id) != 2 or not _is_ascii_digits(self.barcode_id):
            raise ImbError("barcode id must be 2 digits")
        if self.barcode_id[1] > "4":
            raise ImbError("second barcode-id digit must be 0-4")
        if len(self.service_type) != 3 or not _is_ascii_digits(self.service_type):
            raise ImbError("service type must be 3 digits")
        if not _is_ascii_digits(self.mailer_id) or len(self.mailer_id) not in (6, 9):
            raise ImbError("mailer id must be 6 or 9 digits")
        if (len(self.mailer_id) == 9) != self.mailer_id.startswith("9"):
            raise ImbError("mailer id must be 9 digits when it starts with 9, otherwise 6")
        serial_len = 15 - len(self.mailer_id)
        if len(self.serial) != serial_len or not _is_ascii_digits(self.serial):
            raise ImbError(
                f"serial must be {serial_len} digits with a {len(self.mailer_id)}-digit mailer id"
            )
        if len(self.routing) not in _ROUTING_LENGTHS or not (
            self.routing == "" or _is_ascii_digits(self.routing)
        ):
            raise ImbError("routing code must be empty or 5, 9 or 11 digits")

    @property
    def tracking_code(self) -> str:
        """The 20-digit tracking code, which is how the fields appear in logs and manifests."""
        return self.barcode_id + self.service_type + self.mailer_id + self.serial

    @property
    def digits(self) -> str:
        """Tracking code plus routing code: the inverse of parse_digits()."""
        return self.tracking_code + self.routing


def parse_digits(text: str) -> Imb:
    """Split the 20-31 digit human-readable form into fields.

    The routing length is implied by the total length, and the mailer-id width by its first
    digit, so no separators are needed (or accepted) to recover the fields.
    """
    if not _is_ascii_digits(text):
        raise ImbError("IMb digits must contain only the digits 0-9")
    if len(text) - _TRACKING_LEN not in _ROUTING_LENGTHS:
        raise ImbError(f"IMb digits must be 20, 25, 29 or 31 digits, got {len(text)}")
    mailer_len = 9 if text[5] == "9" else 6
    return Imb(
        barcode_id=text[0:2],
        service_type=text[2:5],
        mailer_id=text[5 : 5 + mailer_len],
        serial=text[5 + mailer_len : _TRACKING_LEN],
        routing=text[_TRACKING_LEN:],
    )


def _to_binary(imb: Imb) -> int:
    """Pack routing and tracking into the single integer the spec calls the binary data."""
    routing = imb.routing
    value = (int(routing) if routing else 0) + _ROUTING_OFFSET[len(routing)]
    value = value * 10 + int(imb.barcode_id[0])
    value = value * 5 + int(imb.barcode_id[1])
    for digit in imb.tracking_code[2:]:
        value = value * 10 + int(digit)
    return value


def _from_binary(value: int) -> Imb:
    """Unpack the binary data; values no encoder could produce count as a failed frame check."""
    routing_value, tracking_value = divmod(value, _TRACKING_RADIX)
    if routing_value >= _ROUTING_LIMIT:
        raise ImbError(_FRAME_CHECK_FAILED)
    tail = f"{tracking_value % 10**18:018d}"
    head = tracking_value // 10**18
    barcode_id = f"{head // 5}{head % 5}"
    if routing_value == 0:
        routing = ""
    else:
        length = next(n for n in (11, 9, 5) if routing_value >= _ROUTING_OFFSET[n])
        routing = f"{routing_value - _ROUTING_OFFSET[length]:0{length}d}"
    return parse_digits(barcode_id + tail + routing)


def _crc11(value: int) -> int:
    """USPS-B-3200 Appendix C CRC-11 over the 102 data bits, most significant bit first.

    The appendix feeds 13 bytes but skips the top two bits of the first one; walking exactly
    the low 102 bits of the integer is the same computation without the byte juggling.
    """
    fcs = 0x7FF
    for shift in range(_DATA_BITS - 1, -1, -1):
        fcs <<= 1
        if (fcs >> 11) ^ (value >> shift) & 1:
            fcs ^= _CRC_POLYNOMIAL
        fcs &= 0x7FF
    return fcs


def encode_bars(imb: Imb) -> str:
    """Render an Imb as 65 bar letters: A ascender, D descender, F full, T tracker."""
    value = _to_binary(imb)
    fcs = _crc11(value)

    codewords = [0] * 10
    value, codewords[9] = divmod(value, _CODEWORD_J_RADIX)
    for index in range(8, 0, -1):
        value, codewords[index] = divmod(value, _CODEWORD_RADIX)
    codewords[0] = value
    # Codeword J is doubled so its parity can mark orientation, and A carries the FCS's top bit.
    codewords[9] *= 2
    if fcs & 0x400:
        codewords[0] += _CODEWORD_A_FCS_OFFSET

    characters = [_CODEWORD_TO_CHAR[cw] for cw in codewords]
    # The low ten FCS bits are stored by complementing characters, which flips their popcount
    # (5 <-> 8, 2 <-> 11) so a reader can tell without ambiguity.
    for index in range(10):
        if fcs >> index & 1:
            characters[index] ^= _CHAR_MASK

    return "".join(
        _BAR_LETTER[bool(characters[dc] >> db & 1), bool(characters[ac] >> ab & 1)]
        for (dc, db), (ac, ab) in _BAR_MAP
    )


def decode_bars(bars: str) -> Imb:
    """Read 65 bar letters back into an Imb, rejecting anything that fails the frame check.

    Every undecodable character, out-of-range codeword and CRC mismatch reports the same
    "frame check failed" message because callers surface it verbatim and only need to know
    the barcode is damaged, not which internal stage noticed.
    """
    if len(bars) != _BAR_COUNT:
        raise ImbError(f"IMb bars must be {_BAR_COUNT} characters, got {len(bars)}")
    letters = bars.upper()
    if not all(letter in _LETTER_HALVES for letter in letters):
        raise ImbError("IMb bars may contain only the letters A, D, F and T")

    characters = [0] * 10
    for letter, ((dc, db), (ac, ab)) in zip(letters, _BAR_MAP, strict=True):
        descender, ascender = _LETTER_HALVES[letter]
        characters[dc] |= descender << db
        characters[ac] |= ascender << ab

    fcs = 0
    codewords: list[int] = []
    for index, char in enumerate(characters):
        if char.bit_count() in (8, 11):
            char ^= _CHAR_MASK
            fcs |= 1 << index
        codeword = _CHAR_TO_CODEWORD.get(char)
        if codeword is None:
            raise ImbError(_FRAME_CHECK_FAILED)
        codewords.append(codeword)

    if codewords[0] >= _CODEWORD_A_FCS_OFFSET:
        codewords[0] -= _CODEWORD_A_FCS_OFFSET
        fcs |= 0x400
    half_j, odd_j = divmod(codewords[9], 2)
    if odd_j or half_j >= _CODEWORD_J_RADIX or codewords[0] >= _CODEWORD_A_FCS_OFFSET:
        raise ImbError(_FRAME_CHECK_FAILED)

    value = codewords[0]
    for codeword in codewords[1:9]:
        value = value * _CODEWORD_RADIX + codeword
    value = value * _CODEWORD_J_RADIX + half_j

    # The codeword ranges checked above already bound the value to 102 bits.
    if _crc11(value) != fcs:
        raise ImbError(_FRAME_CHECK_FAILED)
    return _from_binary(value)


def parse_imb(text: str) -> Imb:
    """Accept whichever form a log happens to carry: the digit string or the bar letters."""
    stripped = text.strip()
    if _is_ascii_digits(stripped):
        return parse_digits(stripped)
    if stripped.isascii() and stripped.isalpha():
        return decode_bars(stripped)
    raise ImbError("IMb must be 20, 25, 29 or 31 digits or 65 bar letters (A, D, F, T)")
