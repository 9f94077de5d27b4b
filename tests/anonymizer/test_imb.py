"""Tests for the Intelligent Mail barcode codec (USPS-B-3200)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer import imb as imb_module
from anonymizer.imb import Imb, ImbError, decode_bars, encode_bars, parse_digits, parse_imb

# Worked examples published in USPS-B-3200 (tracking code 01234567094987654321 with each
# routing-code length).
TRACKING = "01234567094987654321"
VECTORS = [
    ("", "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT"),
    ("01234", "DTTAFADDTTFTDTFTFDTDDADADAFADFATDDFTAAAFDTTADFAAATDFDTDFADDDTDFFT"),
    ("012345678", "ADFTTAFDTTTTFATTADTAAATFTFTATDAAAFDDADATATDTDTTDFDTDATADADTDFFTFA"),
    ("01234567891", "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA"),
]
VECTOR_IDS = ["no-routing", "zip5", "zip9", "zip11"]
FRAME_CHECK_FAILED = "frame check failed"
LETTERS = "ADFT"


def _expected(routing: str) -> Imb:
    return Imb(
        barcode_id="01",
        service_type="234",
        mailer_id="567094",
        serial="987654321",
        routing=routing,
    )


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def imbs(draw: st.DrawFn) -> Imb:
    barcode_id = draw(_digits(1)) + draw(st.sampled_from("01234"))
    service_type = draw(_digits(3))
    if draw(st.booleans()):
        mailer_id = "9" + draw(_digits(8))
        serial = draw(_digits(6))
    else:
        mailer_id = draw(st.sampled_from("012345678")) + draw(_digits(5))
        serial = draw(_digits(9))
    routing = draw(st.sampled_from([0, 5, 9, 11]).flatmap(_digits))
    return Imb(barcode_id, service_type, mailer_id, serial, routing)


# --- published vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(("routing", "bars"), VECTORS, ids=VECTOR_IDS)
def test_published_vector_encodes(routing: str, bars: str) -> None:
    assert encode_bars(parse_digits(TRACKING + routing)) == bars


@pytest.mark.parametrize(("routing", "bars"), VECTORS, ids=VECTOR_IDS)
def test_published_vector_decodes(routing: str, bars: str) -> None:
    assert decode_bars(bars) == _expected(routing)
    assert decode_bars(bars.lower()) == _expected(routing)


@pytest.mark.parametrize(("routing", "bars"), VECTORS, ids=VECTOR_IDS)
def test_parse_imb_accepts_both_forms(routing: str, bars: str) -> None:
    expected = _expected(routing)
    assert parse_imb(TRACKING + routing) == expected
    assert parse_imb(f"  {bars}\n") == expected
    assert parse_imb(f"\t{TRACKING}{routing} ") == expected


def test_published_intermediate_values() -> None:
    # USPS-B-3200 worked example for the 31-digit vector: binary data and frame check sequence.
    value = imb_module._to_binary(_expected("01234567891"))
    assert value == 0x016907B2A24ABC16A2E5C004B1
    assert imb_module._crc11(value) == 0x751


def test_digits_property_round_trips() -> None:
    imb = _expected("01234567891")
    assert imb.tracking_code == TRACKING
    assert imb.digits == TRACKING + "01234567891"


# --- generated tables ----------------------------------------------------------------------


def test_character_tables_match_appendix() -> None:
    five, two = imb_module._TABLE_5_OF_13, imb_module._TABLE_2_OF_13
    assert len(five) == 1287
    assert len(two) == 78
    assert (five[0], five[1], five[-1]) == (0x001F, 0x1F00, 0x01F0)
    assert (two[0], two[1], two[-1]) == (0x0003, 0x1800, 0x00A0)
    assert all(c.bit_count() == 5 for c in five)
    assert all(c.bit_count() == 2 for c in two)
    assert len(set(five + two)) == 1365


def test_bar_map_covers_every_character_bit_once() -> None:
    sources = [src for pair in imb_module._BAR_MAP for src in pair]
    assert len(imb_module._BAR_MAP) == 65
    assert sorted(sources) == [(c, b) for c in range(10) for b in range(13)]


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=200)
@given(imbs())
def test_encode_decode_round_trip(imb: Imb) -> None:
    bars = encode_bars(imb)
    assert len(bars) == 65
    assert set(bars) <= set(LETTERS)
    assert decode_bars(bars) == imb
    assert parse_imb(bars) == imb


@settings(max_examples=200)
@given(imbs())
def test_digits_round_trip(imb: Imb) -> None:
    assert parse_digits(imb.digits) == imb
    assert parse_imb(imb.digits) == imb


@settings(max_examples=200)
@given(imbs(), st.integers(min_value=0, max_value=64), st.integers(min_value=1, max_value=3))
def test_single_bar_flip_never_yields_another_barcode(imb: Imb, position: int, shift: int) -> None:
    bars = encode_bars(imb)
    replacement = LETTERS[(LETTERS.index(bars[position]) + shift) % 4]
    damaged = bars[:position] + replacement + bars[position + 1 :]
    assert damaged != bars
    try:
        decoded = decode_bars(damaged)
    except ImbError:
        return
    assert decoded == imb


@pytest.mark.parametrize(("routing", "bars"), VECTORS, ids=VECTOR_IDS)
def test_every_single_bar_flip_of_vectors_fails_frame_check(routing: str, bars: str) -> None:
    for position in range(65):
        for letter in LETTERS.replace(bars[position], ""):
            damaged = bars[:position] + letter + bars[position + 1 :]
            with pytest.raises(ImbError, match=f"^{FRAME_CHECK_FAILED}$"):
                decode_bars(damaged)


@pytest.mark.parametrize("character", range(10))
def test_crc_mismatch_is_detected(character: int) -> None:
    # Complementing a whole character keeps it a valid table entry (popcount 5 <-> 8) but
    # flips one FCS bit, so only the CRC comparison can reject it.
    bars = list(VECTORS[3][1])
    halves = {"T": (False, False), "D": (True, False), "A": (False, True), "F": (True, True)}
    letter_of = {v: k for k, v in halves.items()}
    for i, ((dc, _), (ac, _)) in enumerate(imb_module._BAR_MAP):
        descender, ascender = halves[bars[i]]
        bars[i] = letter_of[descender ^ (dc == character), ascender ^ (ac == character)]
    with pytest.raises(ImbError, match=f"^{FRAME_CHECK_FAILED}$"):
        decode_bars("".join(bars))


@settings(max_examples=200)
@given(st.text(alphabet=LETTERS, min_size=65, max_size=65))
def test_random_bars_fail_or_are_self_consistent(bars: str) -> None:
    try:
        imb = decode_bars(bars)
    except ImbError as exc:
        assert str(exc) == FRAME_CHECK_FAILED
    else:
        assert encode_bars(imb) == bars


def test_random_bars_almost_always_fail_frame_check() -> None:
    rng = random.Random(3200)
    failures = 0
    trials = 2000
    for _ in range(trials):
        bars = "".join(rng.choice(LETTERS) for _ in range(65))
        try:
            decode_bars(bars)
        except ImbError as exc:
            assert str(exc) == FRAME_CHECK_FAILED
            failures += 1
    assert failures >= trials - 1


# --- invalid input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0123456709498765432",  # 19
        "012345670949876543210",  # 21
        TRACKING + "0123",  # 24
        TRACKING + "012345",  # 26
        TRACKING + "0123456789",  # 30
        TRACKING + "012345678912",  # 32
    ],
)
def test_parse_digits_rejects_wrong_lengths(text: str) -> None:
    with pytest.raises(ImbError):
        parse_digits(text)


@settings(max_examples=200)
@given(st.text(alphabet="0123456789", max_size=40).filter(lambda s: len(s) not in (20, 25, 29, 31)))
def test_parse_digits_rejects_any_other_length(text: str) -> None:
    with pytest.raises(ImbError):
        parse_digits(text)


def test_length_error_message() -> None:
    with pytest.raises(ImbError, match="must be 20, 25, 29 or 31 digits"):
        parse_digits("1" * 22)


@pytest.mark.parametrize(
    "text",
    [
        "0123456709498765432A",
        "01234-567094987654321",
        " 01234567094987654321",
        "0123456709498765432\u0663",  # Arabic-Indic digit three
        "0123456709498765432\u00b2",  # superscript two
    ],
)
def test_parse_digits_rejects_non_digits(text: str) -> None:
    with pytest.raises(ImbError):
        parse_digits(text)


@pytest.mark.parametrize("second", "56789")
def test_parse_digits_rejects_second_barcode_id_digit_above_4(second: str) -> None:
    with pytest.raises(ImbError, match="second barcode-id digit must be 0-4"):
        parse_digits("0" + second + TRACKING[2:])


@pytest.mark.parametrize(
    "bars",
    ["", VECTORS[0][1][:-1], VECTORS[0][1] + "A"],
)
def test_decode_bars_rejects_wrong_length(bars: str) -> None:
    with pytest.raises(ImbError, match="65 characters"):
        decode_bars(bars)


@pytest.mark.parametrize("bad", ["X", "1", " ", "\u0410"])  # includes Cyrillic A
def test_decode_bars_rejects_other_letters(bad: str) -> None:
    bars = VECTORS[0][1]
    with pytest.raises(ImbError, match="only the letters A, D, F and T"):
        decode_bars(bad + bars[1:])


@pytest.mark.parametrize("text", ["", "   ", "0123456709498765432-1", "hello", "ADFT" * 16 + "X"])
def test_parse_imb_rejects_garbage(text: str) -> None:
    with pytest.raises(ImbError):
        parse_imb(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("1", "234", "567094", "987654321", ""), "barcode id must be 2 digits"),
        (("05", "234", "567094", "987654321", ""), "second barcode-id digit"),
        (("01", "23", "567094", "987654321", ""), "service type must be 3 digits"),
        (("01", "234", "56709", "987654321", ""), "mailer id must be 6 or 9 digits"),
        (("01", "234", "967094", "987654321", ""), "9 digits when it starts with 9"),
        (("01", "234", "567094123", "987654", ""), "9 digits when it starts with 9"),
        (("01", "234", "567094", "98765432", ""), "serial must be 9 digits"),
        (("01", "234", "967094123", "9876543", ""), "serial must be 6 digits"),
        (("01", "234", "567094", "987654321", "1234"), "routing code"),
        (("01", "234", "567094", "987654321", "1234x"), "routing code"),
    ],
)
def test_imb_validates_fields(fields: tuple[str, str, str, str, str], message: str) -> None:
    with pytest.raises(ImbError, match=message):
        Imb(*fields)


def test_imb_error_is_value_error() -> None:
    assert issubclass(ImbError, ValueError)


@pytest.mark.parametrize(
    "digits",
    [
        "00000000000000000000",
        "94999999999999999999" + "99999999999",
        "01234" + "900000000" + "000000" + "00000",
        "01234" + "999999999" + "999999" + "000000000",
        TRACKING + "00000",
        TRACKING + "000000000",
        TRACKING + "00000000000",
    ],
)
def test_boundary_values_round_trip(digits: str) -> None:
    imb = parse_digits(digits)
    assert imb.digits == digits
    assert decode_bars(encode_bars(imb)) == imb
