"""Per-record helpers rewritten for speed must give what the plain versions (kept here) gave:
the network cut of an address, and the daily visitor id (one message hashed in one call)."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from anonymizer.ip import _cut
from anonymizer.pseudonym import _VISITOR_PERSON, DIGEST_BYTES, daily_visitor_id


def plain_cut(packed: bytes, prefix: int) -> bytes:
    full, rest = divmod(prefix, 8)
    out = bytearray(packed[:full])
    if rest and full < len(packed):
        out.append(packed[full] & (0xFF << (8 - rest)) & 0xFF)
    out.extend(b"\x00" * (len(packed) - len(out)))
    return bytes(out)


def plain_visitor_id(salt: bytes, tenant_id: str, ip_packed: bytes, user_agent: str) -> str:
    h = hashlib.blake2b(key=salt, digest_size=DIGEST_BYTES, person=_VISITOR_PERSON)
    for part in (tenant_id.encode(), b"\x00", ip_packed, b"\x00", user_agent.encode()):
        h.update(part)
    return h.hexdigest()


@given(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)))
def test_cut_is_the_plain_cut_at_every_prefix(packed: bytes) -> None:
    for prefix in range(len(packed) * 8 + 9):
        assert _cut(packed, prefix) == plain_cut(packed, prefix)


@given(st.binary(min_size=32, max_size=32), st.text(), st.binary(max_size=16), st.text())
def test_visitor_id_is_the_plain_streamed_hash(salt: bytes, t: str, ip: bytes, ua: str) -> None:
    assert daily_visitor_id(salt, t, ip, ua) == plain_visitor_id(salt, t, ip, ua)
