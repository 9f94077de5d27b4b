"""The hostile corpus: personal data as a hostile or careless sender puts it into ordinary fields,
in every class the detectors know, encoded the ways a reader would decode, in every field of
every kind, through every endpoint (JSON, NDJSON, combined-log text, OTLP JSON and protobuf).

`Hostile.needles` are what must never be found in storage: the value as sent, its decoded forms,
the bare digits of a card or phone number, the embedded IPv4 of a 6to4 / Teredo / NAT64 address.
`leaks(strings)` says which values leaked, so the same corpus gives the before/after figure.
"""

from __future__ import annotations

import gzip
import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

TRACKING = "01234567094987654321"
ROUTING = "01234567891"
BENIGN_IP = "198.51.100.1"
UA = "Mozilla/5.0 (Linux; Android 14; {} Build/UP1A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"


@dataclass(frozen=True, slots=True)
class Hostile:
    cls: str
    text: str  # what is sent
    needles: tuple[str, ...]  # what must never be stored (case-insensitive)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


EMAILS = (
    "john.doe@example.com", "a.b+c@sub.example.co.uk", "kim_99@mail.example.net",
    "first.last@company.example.org", "x1@y2.example.io", "jane@doe@corp.example.org",
    "max.mustermann@beispiel.example.de", "o'brien.sean@example.ie",
)  # fmt: skip
PHONES = (
    "+1-555-123-4567", "+1 415 555 2671", "+44 20 7946 0958", "+49 30 1234567",
    "0049 30 7654321", "(555) 987-6543", "555-234-5678", "555.345.6789", "030 2345678",
    "0171/3456789", "+33 1 42 68 53 00", "+4915112345678", "+1 (212) 555-0199",
    "+81-3-1234-5678",
)  # fmt: skip
CARDS = (
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004", "3400 000000 00009",
    "6011000000000004", "4012888888881881", "378282246310005", "5105105105105100",
    "4222222222222", "3530 1113 3330 0000",
)  # fmt: skip
IBANS = (
    "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
    "NL91ABNA0417164300", "ES9121000418450200051332", "CH9300762011623852957",
    "GB33 BUKB 2020 1555 5555 55",
)  # fmt: skip
IPV4_TEXT = (
    ("10.1.2.3", "10.1.2.3"), ("host-10.11.12.13", "10.11.12.13"), ("8.8.4.4.json", "8.8.4.4"),
    ("ip-10-21-22-23", "10.21.22.23"), ("ec2-54-31-32-33.compute-1.amazonaws.com", "54.31.32.33"),
    ("192.168.100.200", "192.168.100.200"), ("10.41.42.43.nip.io", "10.41.42.43"),
    ("from 203.0.113.99 today", "203.0.113.99"),
)  # fmt: skip
IPV4_HOSTS = (  # forms inet_aton accepts, as hosts: (text, address, needle of the text)
    ("3232235777", "192.168.1.1"), ("0300.0250.0.2", "192.168.0.2"), ("0xc0a80003", "192.168.0.3"),
    ("251.7", "251.0.0.7"), ("192.168.7.7.", "192.168.7.7"), ("[2001:db8::4242]", ""),
    ("user:s3cretpw@192.168.8.8", "192.168.8.8"), ("admin:hunter2pw@shop.example.com", ""),
)  # fmt: skip
IPV6_TEXT = (
    "2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:db8:0:0:1:0:0:77",
    "2a00:1450:4001:82b::200e",
)  # fmt: skip
# IPv6 client addresses that carry an IPv4 address: (address, the IPv4 inside)
IPV6_EMBEDDED = (
    ("2002:c633:6405::1", "198.51.100.5"),  # 6to4
    ("2002:cb00:7163:1::abcd", "203.0.113.99"),  # 6to4
    ("2001:0:4136:e378:8000:63bf:39cc:9bf9", "198.51.100.6"),  # Teredo (client inverted)
    ("64:ff9b::c633:6407", "198.51.100.7"),  # NAT64 well-known
    ("64:ff9b:1:c633:0064:0800::", "198.51.100.8"),  # NAT64 local-use, /48 layout
    ("::198.51.100.9", "198.51.100.9"),  # IPv4-compatible
    ("::ffff:0:198.51.100.10", "198.51.100.10"),  # IPv4-translated
    ("::ffff:198.51.100.11", "198.51.100.11"),  # IPv4-mapped
)
TOKENS = (
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("Bearer abcDEF123ghiJKL456", "abcDEF123ghiJKL456"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("9f86d081884c7d659a2feaa0c55ad015", "9f86d081884c7d659a2feaa0c55ad015"),
    ("token AbCdEfGh1234IjKlMnOp99", "AbCdEfGh1234IjKlMnOp99"),
)  # fmt: skip
DIGIT_RUNS = ("customer 12345678", "acct-0000123456", "order#987654321", "ref 20261126001")
UUIDS = ("550e8400-e29b-41d4-a716-446655440000", "6fa459ea-ee8a-3ca4-894e-db77e160355e")


def _encoded(cls: str, text: str, needles: tuple[str, ...]) -> Iterator[Hostile]:
    """The value as is, inside other text, and percent-encoded once and twice."""
    yield Hostile(cls, text, needles)
    yield Hostile(cls, f"hello {text} bye", needles)
    yield Hostile(cls, f"<{text}>;x", needles)
    if " " in text:
        yield Hostile(cls, text.replace(" ", "+"), (*needles, text.replace(" ", "+")))
    once = quote(text, safe="")
    if once != text:
        yield Hostile(cls, once, (*needles, once))
        yield Hostile(cls, quote(once, safe=""), (*needles, once))


def corpus() -> list[Hostile]:
    out: list[Hostile] = []
    for e in EMAILS:
        local = e.rpartition("@")[0]
        needles = (e, local) if len(local) >= 5 else (e,)
        out += _encoded("email", e, needles)
        out.append(Hostile("email", e.replace("@", "%40"), needles))
        out.append(Hostile("email", e.replace("@", "%2540"), needles))
    for p in PHONES:
        out += _encoded("phone", p, (p, _digits(p)))
        out.append(Hostile("phone", f"call {p} now", (p, _digits(p))))
    for p in PHONES[:4]:  # full-width digits: NFKC makes them ASCII
        wide = p.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789+"})
        out.append(Hostile("phone", wide, (wide, _digits(p))))
    for c in CARDS:
        out += _encoded("card", c, (c, _digits(c)))
    for i in IBANS:
        out += _encoded("iban", i, (i, i.replace(" ", "")))
    for text, addr in IPV4_TEXT:
        dashed = addr.replace(".", "-")
        out += _encoded("ipv4", text, (addr, dashed))
    for text, addr in IPV4_HOSTS:
        needles = tuple(n for n in (text.strip("[]."), addr) if n)
        if "@" in text:
            needles = (text.partition("@")[0], *((addr,) if addr else ()))
        out.append(Hostile("ipv4_host", text, needles))
    for a in IPV6_TEXT:
        full = ipaddress.IPv6Address(a)
        out += _encoded("ipv6", a, (a, full.compressed, full.exploded))
    for token, body in TOKENS:
        out += _encoded("token", token, (body,))
    for d in DIGIT_RUNS:
        out += _encoded("id", d, (_digits(d),))
    for u in UUIDS:
        out += _encoded("uuid", u, (u, u.replace("-", "")))
    for cls, text, needles in UNICODE_FORMS:
        out.append(Hostile(cls, text, needles))
    return out


_ZW = "\u200b"  # zero-width space: invisible, survives NFKC
_ARABIC = {ord(d): 0x0660 + int(d) for d in "0123456789"}  # Arabic-Indic digits
# Forms a reader takes for personal data that NFKC alone does not normalize, and written ones
UNICODE_FORMS = (
    ("email", f"ki{_ZW}m.zw@exam{_ZW}ple.com", (f"ki{_ZW}m.zw", "kim.zw")),
    ("email", "ki\u200dm.zwj@example.com", ("ki\u200dm.zwj", "kim.zwj")),
    ("email", '"kim quoted"@example.com', ("kim quoted",)),
    ("email", "müller.idn@bücher.example", ("müller.idn",)),
    ("email", "kim.ideo@example\u3002com", ("kim.ideo",)),
    ("email", "kim.obf(at)example(dot)com", ("kim.obf",)),
    ("email", "kim.obf2 [at] example [dot] org", ("kim.obf2",)),
    ("phone", f"+1{_ZW}415{_ZW}555{_ZW}2672", (f"+1{_ZW}415", "4155552672")),
    ("phone", "+49 30 7654329".translate(_ARABIC), ("+49 30 7654329".translate(_ARABIC),)),
    ("card", "4111.1111.1111.1111", ("4111.1111.1111.1111",)),
    ("card", "4012_8888_8888_1881", ("4012_8888_8888_1881",)),
    ("card", f"5500{_ZW}0000{_ZW}0000{_ZW}0004", (f"5500{_ZW}0000",)),
    ("iban", "GB82-WEST-1234-5698-7654-32", ("GB82-WEST-1234",)),
    ("ipv4", "10.51.52.53".replace(".", "\u3002"), ("10\u300251\u300252",)),
)


def embedded() -> list[Hostile]:
    """Client addresses: the IPv4 inside must not survive beyond its /24."""
    out = []
    for v6, v4 in IPV6_EMBEDDED:
        packed = ipaddress.IPv4Address(v4).packed
        hex_v4 = f"{packed[0]:x}{packed[1]:02x}:{packed[2]:x}{packed[3]:02x}"
        out.append(Hostile("ipv6_embedded", v6, (v4, hex_v4, v6)))
    return out


# --- records ------------------------------------------------------------------------------------

LIMITS = {
    "service": 64, "host": 255, "os_version": 32, "app_version": 32, "screen": 32, "locale": 35,
    "manufacturer": 64, "model": 128, "os": 64, "event": 128, "feature": 128, "action": 128,
    "operation_code": 16, "mail_class": 32, "delivery_status": 64,
}  # fmt: skip


def _fit(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """Leave out fields the value does not fit (the record would be refused, not stored)."""
    limit = dict(LIMITS, event=64) if kind == "mail_scan" else LIMITS
    return {
        k: v for k, v in record.items() if not (isinstance(v, str) and len(v) > limit.get(k, 10**6))
    }


def host_only(h: Hostile) -> bool:
    """Host forms (`251.7`, `0xc0a80003`) are addresses only where a host is expected; in free
    text they are version numbers and hex constants."""
    return h.cls == "ipv4_host"


def access(h: Hostile) -> dict[str, Any]:
    v, q = h.text, quote(h.text, safe="%")
    if host_only(h):
        return {"ip": BENIGN_IP, "host": v, "path": "/", "referrer": f"http://{v}/r"}
    return _fit(
        {
            "ip": h.text if h.cls == "ipv6_embedded" else BENIGN_IP,
            "method": "GET",
            "host": v if h.cls == "ipv4_host" else f"{v}.example.com".replace(" ", "-"),
            "path": f"/u/{q}/pre-{q}-post?utm_source={q}&q={q};utm_campaign={q};secret={q}",
            "referrer": f"http://{v}/r/{q}?q={q}",
            "user_agent": UA.format(v),
            "service": v,
            "status": 200,
            "user_id": v,
        },
        "access_log",
    )


def device(h: Hostile) -> dict[str, Any]:
    v = h.text
    rec: dict[str, Any] = {"device_id": v, "user_id": v, "user_agent": UA.format(v)}
    for name in ("manufacturer", "model", "os", "os_version", "app_version", "screen", "locale"):
        rec[name] = v
    rec["ip"] = v if h.cls == "ipv6_embedded" else BENIGN_IP
    return _fit(rec, "device")


def event(h: Hostile) -> dict[str, Any]:
    v, q = h.text, quote(h.text, safe="%")
    if host_only(h):
        return {"event": "visit", "url": f"https://{v}/p?utm_source=x"}
    return _fit(
        {
            "event": v,
            "feature": v,
            "action": v,
            "user_id": v,
            "consent": ["essential", "analytics"],
            "url": f"https://shop.example.com/p/{q}/x-{q}?utm_source={q};ref={q}&utm_medium={q}",
            "properties": {"contact": v, "note": f"see {v}", "ip_10.9.8.7": 1, "n_98765432": v},
        },
        "event",
    )


def mail_scan(h: Hostile) -> dict[str, Any]:
    v = h.text
    return _fit(
        {
            "imb": TRACKING + ROUTING,
            "event": v,
            "operation_code": v,
            "mail_class": v,
            "delivery_status": v,
        },
        "mail_scan",
    )


BUILDERS = {"access_log": access, "device": device, "event": event, "mail_scan": mail_scan}
ROUTES = {
    "access_log": "/v1/logs", "device": "/v1/devices", "event": "/v1/events",
    "mail_scan": "/v1/mail-scans",
}  # fmt: skip


def combined_line(h: Hostile) -> str:
    """The access record as an Apache combined line (absolute-form target carries the host)."""
    r = access(h)
    host = quote(str(r.get("host", "h.example")), safe=":@[]")
    target = f"http://{host}{quote(r['path'], safe='/?&;=%')}"
    ref = str(r["referrer"]).replace('"', "")
    ua = str(r.get("user_agent", "-")).replace('"', "")
    return (
        f'{r["ip"]} - - [26/Nov/2026:00:00:00 +0000] "GET {target} HTTP/1.1" 200 12 "{ref}" "{ua}"'
    )


# --- OTLP ---------------------------------------------------------------------------------------

_OTLP_NAMES = {
    "access_log": {
        "ip": "client.address", "method": "http.request.method", "host": "server.address",
        "path": "url.path", "referrer": "http.request.header.referer",
        "user_agent": "user_agent.original", "service": "service.name", "user_id": "enduser.id",
        "status": "http.response.status_code",
    },
    "device": {
        "device_id": "device.id", "user_id": "enduser.id", "manufacturer": "device.manufacturer",
        "model": "device.model.name", "os": "os.name", "os_version": "os.version",
        "app_version": "service.version", "locale": "app.locale", "screen": "app.screen",
        "ip": "client.address", "user_agent": "user_agent.original",
    },
    "event": {
        "event": "event.name", "feature": "app.feature", "action": "app.action",
        "user_id": "enduser.id", "url": "url.full",
    },
    "mail_scan": {
        "imb": "mail.imb", "event": "mail.event", "operation_code": "mail.operation_code",
        "mail_class": "mail.class", "delivery_status": "mail.delivery_status",
    },
}  # fmt: skip


def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def otlp_json(items: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """An OTLP/JSON ExportLogsServiceRequest carrying the records (mapped back to attributes)."""
    logs = []
    for kind, record in items:
        attrs = []
        for field, name in _OTLP_NAMES[kind].items():
            if field in record:
                attrs.append({"key": name, "value": _any(record[field])})
        if kind == "event":
            attrs.append({"key": "consent", "value": {"stringValue": "essential,analytics"}})
            for k, v in record.get("properties", {}).items():
                attrs.append({"key": f"app.property.{k}", "value": _any(v)})
        logs.append({"attributes": attrs})
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": logs}]}]}


def otlp_protobuf(doc: dict[str, Any]) -> bytes:
    msg = ExportLogsServiceRequest()
    json_format.ParseDict(doc, msg)
    return msg.SerializeToString()


def requests() -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(route, body, headers) of every request that carries the corpus through every endpoint."""
    hostile = corpus()
    clients = hostile + embedded()
    json_h = {"Content-Type": "application/json"}
    for kind, build in BUILDERS.items():
        values = clients if kind in ("access_log", "device") else hostile
        if kind in ("device", "mail_scan"):  # no host field
            values = [h for h in values if not host_only(h)]
        records = [build(h) for h in values]
        yield ROUTES[kind], orjson.dumps(records), json_h
        doc = otlp_json((kind, r) for r in records)
        yield "/otlp/v1/logs", orjson.dumps(doc), json_h
        yield "/otlp/v1/logs", otlp_protobuf(doc), {"Content-Type": "application/x-protobuf"}
    ndjson = b"\n".join(orjson.dumps(access(h)) for h in clients)
    yield "/v1/logs", ndjson, {"Content-Type": "application/x-ndjson"}
    text = "\n".join(combined_line(h) for h in clients).encode()
    yield (
        "/v1/logs",
        gzip.compress(text),
        {"Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )


def values_tried() -> int:
    return len(corpus()) + len(embedded())


def leaks(strings: Iterable[str]) -> list[Hostile]:
    """The corpus values any needle of which appears in `strings` (case-insensitive)."""
    blob = "\n".join(strings).lower()
    return [h for h in corpus() + embedded() if any(n.lower() in blob for n in h.needles)]


def leaks_by_class(strings: Iterable[str]) -> Counter[str]:
    return Counter(h.cls for h in leaks(strings))


STRING_COLUMNS_SQL = (
    "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
    "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
    "AND engine NOT IN ('MaterializedView', 'View')) AND type LIKE '%String%' "
    "AND type NOT LIKE 'AggregateFunction%' ORDER BY table, position"
)


def column_sql(table: str, name: str, type_: str) -> str:
    """Every text value of one column (Map keys and values, Array items), one per row."""
    q = f"`{name}`"
    if type_.startswith("Map("):
        expr = f"arrayStringConcat(arrayConcat(mapKeys({q}), mapValues({q})), '\\n')"
    elif type_.startswith("Array("):
        expr = f"arrayStringConcat({q}, '\\n')"
    else:
        expr = f"toString({q})"
    return f"SELECT {expr} AS v FROM `{table}`"
