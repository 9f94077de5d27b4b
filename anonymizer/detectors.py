"""Every personal-data detector, in one place: what the write path replaces and what
`collector scan-pii` looks for are the same code, so the two can never disagree.

Each detector has a name from a closed set, a placeholder, a Python finder (a regex plus a
confirmation: Luhn for cards, mod-97 for IBANs, `inet_pton` for addresses) and an RE2 *candidate*
pattern: a superset of what the finder accepts, cheap enough for ClickHouse `match()` (RE2 has no
look-around), so the scanner can pre-filter in SQL and confirm in Python with the same finder.

Text is normalized before detection: NFKC (full-width digits become ASCII digits), then
percent-decoding repeated until stable (`%2540` -> `%40` -> `@`), bounded; a value that still
decodes after the bound is an obfuscation and is treated as a token. Regexes are compiled once,
and the per-value entry points are memoized: real traffic repeats a few thousand values.
"""

from __future__ import annotations

import re
import socket
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote, unquote_plus

DetectorName = Literal["token", "email", "uuid", "iban", "card", "ip", "phone", "id"]
# The order detection runs in: the more specific shape claims its text first (an IBAN or a UUID
# is also a long hex-ish run, a card number is a digit run, an address holds digits).
DETECTOR_NAMES: tuple[DetectorName, ...] = (
    "iban", "uuid", "token", "email", "card", "ip", "phone", "id",
)  # fmt: skip
PLACEHOLDERS: dict[DetectorName, str] = {name: "{" + name + "}" for name in DETECTOR_NAMES}
DEFAULT_DIGITS = 6  # a run of this many digits is an id: account, order, customer number
MAX_DECODE_ROUNDS = 3

_A = re.ASCII


@dataclass(frozen=True, slots=True)
class Detector:
    """One class of personal data."""

    name: DetectorName
    what: str  # for the privacy doc
    confirmation: str  # for the privacy doc: what turns a shape into a finding
    pattern: re.Pattern[str] = field(repr=False)
    confirm: Callable[[str], bool] = field(repr=False)
    candidate: str = field(repr=False)  # RE2, a superset of `pattern` + `confirm`

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS[self.name]

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        for m in self.pattern.finditer(text):
            if self.confirm(m.group(0)):
                yield m


def _always(_: str) -> bool:
    return True


def luhn(digits: str) -> bool:
    """The Luhn check of a payment card number (separators ignored)."""
    nums = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(nums) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616 mod-97 check (spaces ignored)."""
    s = text.replace(" ", "").replace("+", "").replace("-", "").upper()
    if not s.isascii() or not s.isalnum():
        return False
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _is_network(packed: bytes, prefix: str, max_bits: int) -> bool:
    """`a.b.c.0/24`, `2001:db8::/48`: a network prefix (host bits zero) is not an address."""
    bits = int(prefix)
    if bits > max_bits:
        return False
    value = int.from_bytes(packed, "big")
    return value & ((1 << (len(packed) * 8 - bits)) - 1) == 0


def _ipv4_ok(text: str) -> bool:
    """Dotted as `inet_aton` reads it (octal `0300`, hex `0x7f` octets too), or dashed decimal."""
    addr, _, prefix = text.partition("/")
    if "-" in addr:
        parts = addr.split("-")
        if any(int(p) > 255 for p in parts):
            return False
        packed = bytes(int(p) for p in parts)
    else:
        try:
            packed = socket.inet_aton(addr)
        except OSError:
            return False
    return not (prefix and _is_network(packed, prefix, 24))


def _ipv6_ok(text: str) -> bool:
    """A real IPv6 address (so `12:30:45` and `std::vector` are not), other than `::`/`::1`."""
    addr, _, prefix = text.partition("/")
    try:
        packed = socket.inet_pton(socket.AF_INET6, addr)
    except OSError:
        return False
    if packed[:15] == bytes(15) and packed[15] <= 1:
        return False
    if prefix and _is_network(packed, prefix, 64):
        return False
    return sum(c in "0123456789abcdefABCDEF" for c in addr) >= 4


def _phone_ok(text: str) -> bool:
    return 7 <= sum(c.isdigit() for c in text) <= 15


def _token_ok(text: str) -> bool:
    """A long run with digits and letters: a hex digest, or a mixed-case secret. A lower-case
    slug with a year (`logstash-monitorama-2013`) is an ordinary page name."""
    if text.startswith("eyJ") or text[:6].lower() == "bearer" or text.endswith("@"):
        return True
    has_digit = any(c.isdigit() for c in text)
    if not has_digit:
        return False
    body = text.replace("-", "").replace("_", "")
    if len(body) >= 16 and all(c in "0123456789abcdefABCDEF" for c in body):
        return any(c.isalpha() for c in body)
    # a secret is one long chunk; `Kyocera-KPC650-EVDO-in-FreeBSD` is words joined by dashes
    return any(
        len(chunk) >= 16
        and sum(c.islower() for c in chunk) >= 2
        and sum(c.isupper() for c in chunk) >= 2
        and sum(c.isdigit() for c in chunk) >= 2  # `TelemetrySpider2` is a name
        and _DIGIT_LETTER.search(chunk) is not None  # `HuaweiVodafone858`: digits only at the end
        for chunk in re.split(r"[-_]", text)
    )


_DIGIT_LETTER = re.compile(r"[0-9][A-Za-z]")


_EMAIL_CHARS = r"[^\s@/\\<>()\[\]{}\",;:]"
# a domain label: ASCII, or any other script (an internationalized domain, after NFKC)
_LABEL = r"(?:[A-Za-z0-9-]|[^\x00-\x7f])"
_TLD = r"(?:xn--[A-Za-z0-9-]+|[A-Za-z]{2,}|[^\x00-\x7f]{2,})(?![A-Za-z0-9]|[^\x00-\x7f])"
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "token",
        "JWTs, bearer tokens, hex digests of 16+ digits, mixed-case secrets of 16+ characters, "
        "URL credentials (`user:password@`)",
        "a JWT starts `eyJ`; a hex run has letters and digits; a secret has lower and upper "
        "case and digits in one chunk (not words joined by `-`/`_`)",
        re.compile(
            r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*"
            r"|\b[Bb][Ee][Aa][Rr][Ee][Rr][ +]+[A-Za-z0-9._~+/=-]{8,}"
            r"|(?<![^\s/\"'<(=])[^\s/:@<>\"']{1,256}:[^\s/@<>\"']{1,256}@(?=[A-Za-z0-9\[{])"
            r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_-])",
            _A,
        ),
        _token_ok,
        r"eyJ[A-Za-z0-9_-]{4,}\.|(?i:bearer)[ +]+[A-Za-z0-9._~+/=-]{8,}|[A-Za-z0-9_-]{16,}"
        r"|:[^\s/@<>\"']+@",
    ),
    Detector(
        "email",
        "email addresses, also with several `@`, percent-encoded (`%40`, `%2540`), with a quoted "
        'local part (`"j doe"@`), an internationalized domain (`bücher.example`) or written '
        "`(at)`/`[at]` (with `(dot)`/`[dot]`)",
        "a local part, `@`, a domain with a dot and a top-level domain of letters",
        re.compile(
            # a local part starts only at the start of a run of its characters, and at most 4
            # are chained by `@`: otherwise a long run with no `@` (or `a@a@a@...`) was scanned
            # again from each of its positions (8 KB of letters: seconds)
            rf"(?:(?:\"[^\"\n]{{1,64}}\"|(?<!{_EMAIL_CHARS[:-1]}]){_EMAIL_CHARS}+)@){{1,4}}"
            rf"(?:{_LABEL}+\.)+{_TLD}"
            # written out: `kim(at)example.com`, `kim [at] example [dot] com`
            rf"|(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+ ?[(\[{{](?i:at)[)\]}}] ?"
            rf"(?:{_LABEL}+ ?(?:\.|[(\[{{](?i:dot)[)\]}}]) ?)+{_TLD}",
            _A,
        ),
        _always,
        r"@[A-Za-z0-9-]+\.|[(\[{](?i:at)[)\]}]",
    ),
    Detector(
        "uuid",
        "UUIDs",
        "8-4-4-4-12 hex digits (dashes optional)",
        re.compile(
            r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?"
            r"[0-9A-Fa-f]{12}(?![0-9A-Fa-f])",
            _A,
        ),
        _always,
        r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    ),
    Detector(
        "iban",
        "IBANs, with or without spaces or dashes",
        "ISO 13616 mod-97 check",
        re.compile(
            r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[ +-]?[A-Z0-9]{4}){2,7}(?:[ +-]?[A-Z0-9]{1,3})?",
            _A | re.IGNORECASE,
        ),
        iban_ok,
        r"[A-Za-z]{2}[0-9]{2}[ +-]?[A-Za-z0-9]{4}[ +-]?[A-Za-z0-9]{4}",
    ),
    Detector(
        "card",
        "payment card numbers: 13 to 19 digits, with or without spaces or dashes (dots or `_` "
        "between groups of four)",
        "Luhn check",
        re.compile(
            r"(?<![0-9])[0-9](?:[ +-]?[0-9]){12,18}(?![0-9])"
            # `4111.1111.1111.1111`, `4111_1111_...`: only in groups of four (not a version)
            r"|(?<![0-9.])[0-9]{4}([._])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}(?![0-9]|\.[0-9])",
            _A,
        ),
        luhn,
        r"[0-9](?:[ +-]?[0-9]){12,18}|[0-9]{4}[._][0-9]{4}[._][0-9]{4}[._][0-9]",
    ),
    Detector(
        "ip",
        "IPv4 addresses (also inside text: `host-10.1.2.3`, `8.8.8.8.json`, dashed `10-1-2-3` in "
        "host labels) and IPv6 addresses",
        "each IPv4 octet <= 255; IPv6 parsed by inet_pton (so `12:30:45` is not one), not `::1`",
        re.compile(
            r"(?<![0-9.])(?:(?:0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,4})\.){3}"
            r"(?:0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,4})(?:/[0-9]{1,2}(?![0-9]))?(?![0-9A-Za-z]|\.[0-9])"
            # dashed (`ip-10-1-2-3`, `ec2-54-1-2-3.compute...`): as a host label or a word
            r"|(?:(?<=[A-Za-z0-9]-)|(?<![^\s/]))[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}"
            r"(?![0-9A-Za-z]|-[0-9]|\.[0-9])"
            r"|(?<![0-9A-Fa-f:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
            r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?:/[0-9]{1,3}(?![0-9]))?"
            r"(?![0-9A-Fa-f:])",
            _A,
        ),
        lambda s: _ipv6_ok(s) if ":" in s else _ipv4_ok(s),
        r"[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}"
        r"|(?:(?:0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,4})\.){3}(?:0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,4})"
        r"|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f.:]*",
    ),
    Detector(
        "phone",
        "phone numbers: international (`+49 30 1234567`, `0049...`, `+1-555-123-4567`) and "
        "national (`(555) 123-4567`, `555-123-4567`, `030 1234567`)",
        "7 to 15 digits",
        re.compile(
            r"(?<![0-9A-Za-z+])(?:\+|00)[1-9](?:[ .()/+-]{0,2}[0-9]){6,14}(?![0-9])"
            r"|\([0-9]{2,5}\)[ +]?[0-9]{3,4}[ .+-]?[0-9]{3,5}(?![0-9])"
            r"|(?<![0-9])(?<![0-9][.:-])[0-9]{3}[ .+-][0-9]{3}[ .+-][0-9]{4}(?![0-9]|[.:-][0-9])"
            r"|(?<![0-9])(?<![0-9][.:-])0[1-9][0-9]{1,3}[ /.+-][0-9]{5,8}(?![0-9]|[.:-][0-9])",
            _A,
        ),
        _phone_ok,
        r"[0-9](?:[ ./()+-]{0,2}[0-9]){6}",
    ),
    # `id` (a long digit run) is built per policy: see `Detectors.digits`.
)
_ID_WHAT = "long digit runs (account, order, customer numbers): `pii.digits` or more digits"
_BY_NAME: dict[str, Detector] = {d.name: d for d in DETECTORS}
DETECTORS = tuple(_BY_NAME[n] for n in DETECTOR_NAMES if n in _BY_NAME)


def detector(name: str) -> Detector:
    return _BY_NAME[name]


@lru_cache(maxsize=64)
def digits_detector(n: int) -> Detector:
    return Detector(
        "id",
        _ID_WHAT,
        f"{n} or more digits in a row",
        re.compile(r"[0-9]{" + str(n) + ",}", _A),
        _always,
        r"[0-9]{" + str(n) + ",}",
    )


# Ideographic full stops: IDNA reads them as the dot of a domain (U+FF0E is NFKC's already).
_DOTS = {0x3002: ".", 0xFF61: "."}


def _unicode_plain(text: str) -> str:
    """NFKC (full-width forms), then what NFKC leaves: invisible format characters (zero-width
    space and joiners, soft hyphen, bidi marks: `ki\u200dm@exam\u200bple.com`) removed, digits
    of every script (Arabic-Indic `٠١٢`, Devanagari, ...) as ASCII digits, ideographic full
    stops as dots."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for c in text:
        if c.isascii():
            out.append(c)
        elif unicodedata.category(c) == "Cf":
            continue
        elif c.isdecimal():
            out.append(str(unicodedata.decimal(c)))
        else:
            out.append(_DOTS.get(ord(c), c))
    return "".join(out)


def normalize(text: str, plus_is_space: bool = False) -> str:
    """The text a reader would see: NFKC and the other Unicode forms above, then
    percent-decoded until stable (bounded)."""
    if not text.isascii():
        text = _unicode_plain(text)
    if "%" in text or (plus_is_space and "+" in text):
        # `+` is a space only in the form-encoded layer: a `%2B` decoded later is a real `+`
        decode = unquote_plus if plus_is_space else unquote
        for _ in range(MAX_DECODE_ROUNDS):
            decoded = decode(text)
            if decoded == text:
                break
            text = decoded
            decode = unquote
        if not text.isascii():
            text = _unicode_plain(text)
    return text


def _still_encoded(text: str) -> bool:
    return "%" in text and unquote(text) != text


_SIGNAL = re.compile(r"[0-9@]")


_MEMO_MAX = 65_536  # values remembered per detector set (cleared whole when full)
Result = tuple[str, str, tuple[str, ...]]  # (stored text, first class, every class)


@dataclass(frozen=True, slots=True, eq=False)
class Detectors:
    """The enabled detectors, in order, with a memo of recent answers: real traffic repeats a
    few thousand values, and the ingest path asks about every text field of every record (a
    dict lookup is ~20x cheaper than `lru_cache` keyed on this object). Compared and hashed by
    their names and candidate patterns."""

    detectors: tuple[Detector, ...]
    key: tuple[str, ...] = ()
    _memo: dict[str, Result] = field(default_factory=dict, repr=False)
    _memo_plus: dict[str, Result] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        key = tuple(d.name + ":" + d.candidate for d in self.detectors)
        object.__setattr__(self, "key", key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Detectors) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @classmethod
    def build(
        cls, names: frozenset[str] | None = None, digits: int | None = DEFAULT_DIGITS
    ) -> Detectors:
        """`names`: the classes to run (None: all); `digits`: the `id` run length (None: off).
        The same arguments give the same object, so every policy shares one memo."""
        return _build(names, digits)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.detectors)

    def find(self, text: str, plus_is_space: bool = False) -> str:
        """The name of the first class found in `text` (after normalization), or ""."""
        return self._result(text, plus_is_space)[1]

    def classes(self, text: str, plus_is_space: bool = False) -> tuple[str, ...]:
        """Every class found in `text`, in detection order."""
        return self._result(text, plus_is_space)[2]

    def redact(self, text: str, plus_is_space: bool = False) -> tuple[str, str]:
        """(text with every finding replaced in place by its placeholder, first class found).
        Nothing found: the text itself, unchanged (not even decoded), and ""."""
        r = self._result(text, plus_is_space)
        return r[0], r[1]

    def memo(self) -> Mapping[str, Result]:
        """The remembered answers for text outside a query string (`plus_is_space=False`): a hit
        is exactly what `redact`/`find` would return for that text, so a caller on the ingest
        path looks a value up here first and calls `result` only on a miss (saves two calls
        per value). Read-only for callers; the same object for this detector set's life."""
        return self._memo

    def result(self, text: str) -> Result:
        """(stored text, first class, every class) of `text` (not form-encoded), memoized."""
        return self._result(text, False)

    def _result(self, text: str, plus_is_space: bool) -> Result:
        memo = self._memo_plus if plus_is_space else self._memo
        hit = memo.get(text)
        if hit is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            hit = memo[text] = self._scan(text, plus_is_space)
        return hit

    def _scan(self, text: str, plus_is_space: bool) -> Result:
        plain = normalize(text, plus_is_space)
        if _still_encoded(plain):  # encoded more often than any reader decodes: obfuscation
            return PLACEHOLDERS["token"], "token", ("token",)
        if len(plain) < 16 and not _SIGNAL.search(plain):
            return text, "", ()
        names: list[str] = []
        out = plain
        for d in self.detectors:
            pieces: list[str] = []
            pos = 0
            for m in d.finditer(out):
                pieces += [out[pos : m.start()], d.placeholder]
                pos = m.end()
            if pieces:
                names.append(d.name)
                out = "".join(pieces) + out[pos:]
        return (out, names[0], tuple(names)) if names else (text, "", ())


@lru_cache(maxsize=256)
def _build(names: frozenset[str] | None, digits: int | None) -> Detectors:
    chosen = [d for d in DETECTORS if names is None or d.name in names]
    if digits is not None and (names is None or "id" in names):
        chosen.append(digits_detector(digits))
    return Detectors(tuple(chosen))


ALL = Detectors.build()


def candidate_patterns(dets: Detectors = ALL) -> dict[str, str]:
    """name -> RE2 candidate pattern, for a SQL pre-filter (`match(value, pattern)`)."""
    return {d.name: d.candidate for d in dets.detectors}
