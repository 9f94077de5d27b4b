"""The OpenAPI document (`openapi.json`) against the real service: a valid OpenAPI 3.1 document,
served as kept, naming every route and no other, real answers valid against the schema documented
for their status, and record schemas that agree with the validators field by field."""

from __future__ import annotations

import functools
import gzip
import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from anonymizer.errors import RecordInvalid
from anonymizer.kinds import KINDS as RECORD_KINDS
from anonymizer.validate import TimeWindow
from collector.appkeys import SINK
from collector.auth import hash_key
from collector.config import ApiKeyConfig, Config, ServerConfig, TenantConfig
from collector.kinds import KINDS
from collector.middlewares import PUBLIC_PATHS
from tests.conftest import REPO, AppFactory, auth, tenants
from tests.integration.test_kinds import BARS, ROUTING, TRACKING

DOC_PATH = REPO / "openapi.json"
DOC_URI = "urn:telemetry-collector:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
OTLP = "/otlp/v1/logs"
INGEST = ("/v1/logs", "/v1/devices", "/v1/events", "/v1/mail-scans")
POSTS = (*INGEST, OTLP)
RECORD_SCHEMAS = {
    "access_log": "AccessLogRecord",
    "device": "DeviceRecord",
    "event": "EventRecord",
    "mail_scan": "MailScanRecord",
}
ROUTE_KIND = {KINDS[kind].route: kind for kind in RECORD_SCHEMAS}
PRIVACY_KEY = "tck_test-key-acme-privacy-0123456789"
ANALYST_KEY = "tck_test-key-acme-analyst-0123456789"


def scoped_tenants() -> tuple[TenantConfig, ...]:
    """The test tenants, acme with a privacy key and an analyst key beside its ingest key."""
    extra = (
        ApiKeyConfig(hash_key(PRIVACY_KEY), frozenset({"privacy"})),
        ApiKeyConfig(hash_key(ANALYST_KEY), frozenset({"analyst"})),
    )
    return tuple(replace(t, keys=extra) if t.id == "acme" else t for t in tenants())


FIELDS = {kind: RECORD_KINDS[kind].fields for kind in RECORD_SCHEMAS}


# ---- the document, and JSON Schema validation against any schema in it


@functools.cache
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOC_PATH.read_text())
    return loaded


@functools.cache
def registry() -> Registry[Any]:
    """The whole document as one resource, so `#/components/...` references resolve."""
    return Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc()))


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def node(pointer: str) -> Any:
    value: Any = doc()
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _follow(pointer: str) -> str:
    while isinstance(target := node(pointer), dict) and "$ref" in target:
        assert target["$ref"].startswith("#/"), target["$ref"]
        pointer = target["$ref"][1:]
    return pointer


def deref(pointer: str) -> str:
    """The pointer of the object at `pointer`, following the `$ref`s met on the way (for
    OpenAPI objects: responses, headers, examples; not for schemas, whose `$ref`s JSON Schema
    validation resolves itself)."""
    current = ""
    for part in pointer.split("/")[1:]:
        current = _follow(current) + "/" + part
    return _follow(current)


@functools.cache
def validator(pointer: str) -> Draft202012Validator:
    """A JSON Schema (2020-12, the OpenAPI 3.1 dialect) validator for the schema at `pointer`."""
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry())


def schema_errors(pointer: str, value: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(pointer).iter_errors(value)]


def record_schema(kind: str) -> str:
    return f"/components/schemas/{RECORD_SCHEMAS[kind]}"


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc()["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


async def check(resp: Any, path: str, method: str = "post") -> Any:
    """Assert that the answer is documented for this operation and matches its schema and
    headers; returns the body (parsed when JSON)."""
    op = f"/paths/{escape(path)}/{method}"
    body = await resp.read()
    documented = node(op + "/responses")
    assert str(resp.status) in documented, (
        f"{method.upper()} {path} answered {resp.status}, which is not documented: {body[:300]!r}"
    )
    response_ptr = deref(f"{op}/responses/{resp.status}")
    response = node(response_ptr)
    content = response.get("content", {})
    assert resp.content_type in content, (
        f"{method.upper()} {path} {resp.status} answered {resp.content_type}, documented: "
        f"{sorted(content)}"
    )
    for name in response.get("headers", {}):
        header_ptr = deref(f"{response_ptr}/headers/{escape(name)}")
        header = node(header_ptr)
        if header.get("required"):
            assert name in resp.headers, f"{resp.status} without its {name} header"
        if name in resp.headers:
            value: Any = resp.headers[name]
            if header["schema"].get("type") == "integer":
                assert value.isdigit(), f"{name}: {value!r}"
                value = int(value)
            assert not schema_errors(f"{header_ptr}/schema", value)
    schema_ptr = f"{response_ptr}/content/{escape(resp.content_type)}/schema"
    if resp.content_type == "application/json":
        data = orjson.loads(body)
        errors = schema_errors(schema_ptr, data)
        assert not errors, f"{method.upper()} {path} {resp.status}: {data} -> {errors}"
        return data
    if resp.content_type.startswith("text/"):
        text = body.decode()
        assert not schema_errors(schema_ptr, text)
        return text
    return body


# ---- records shared by the live tests: the good ones are those of test_kinds.py

NOW_ISO = datetime.now(UTC).isoformat()
GOOD: dict[str, list[dict[str, Any]]] = {
    "/v1/logs": [
        {"time": NOW_ISO, "ip": "203.0.113.7:443", "method": "get", "host": "Shop.Example:8443",
         "path": "/pricing?utm_source=ad&email=a@b.c", "status": 200, "bytes": 5120, "duration_ms": 12.5,
         "referrer": "https://www.example.org/q", "user_agent": "Mozilla/5.0", "user_id": 42,
         "session_id": "s-9", "service": "web"},
        {"ip": "2001:db8::1"},
    ],
    "/v1/devices": [
        {"device_id": "IMEI-356938035643809", "user_id": "dana@example.com", "manufacturer": "Google",
         "model": "Pixel 8", "os": "Android", "os_version": "14", "app_version": "5.2.0",
         "screen": "1080x2400", "locale": "de-DE", "ip": "198.51.100.77",
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"},
    ],
    "/v1/events": [
        {"event": "checkout", "feature": "cart", "action": "click", "user_id": "erin", "session_id": "s9",
         "consent": ["essential", "analytics"], "url": "https://shop.example/u/erin@example.com/cart?utm_source=x&ref=1",
         "properties": {"plan": "pro", "contact": "erin@example.com", "phone": "+1 415 555 2671",
                        "from_ip": "203.0.113.9", "card": "4111111111111111", "qty": 3, "gift": True, "price": 9.5}},
        {"event": "checkout", "consent": ["essential", "analytics"], "gpc": True},
        {"event": "checkout", "consent": ["essential"]},
        {"event": "checkout", "consent": ["analytics"], "dnt": "1"},
        {"event": "a", "consent": "analytics"},
    ],
    "/v1/mail-scans": [
        {"imb": TRACKING + ROUTING, "event": "processed", "facility_zip": "20260", "operation_code": "918",
         "mail_class": "first-class"},
        {"imb": BARS, "event": "delivered", "delivery_status": "delivered"},
        {"imb": " " + TRACKING + " "},
    ],
}  # fmt: skip
BAD: dict[str, list[dict[str, Any]]] = {
    "/v1/logs": [{"ip": "not-an-ip"}, {"ip": "192.0.2.1", "nested": {"a": 1}}],
    "/v1/devices": [{"model": "no id"}, {"device_id": "d2", "nested": {"a": 1}}, {"device_id": "d3", "ip": "bad"}],
    "/v1/events": [{"event": "e", "properties": {"nested": {"x": 1}}}, {"feature": "no event"},
                   {"event": "e", "consent": ["marketing"]}],
    "/v1/mail-scans": [{"imb": "0123"}, {"imb": TRACKING, "facility_zip": "2026"}, {"event": "no barcode"}],
}  # fmt: skip


def otlp_json(*records: dict[str, Any]) -> bytes:
    """An OTLP/JSON ExportLogsServiceRequest; each record is a dict of string attributes."""
    now = str(time.time_ns())
    log_records = [
        {
            "timeUnixNano": now,
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in r.items()],
        }
        for r in records
    ]
    return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": log_records}]}]})


OTLP_GOOD = ({"client.address": "203.0.113.7", "http.request.method": "GET"}, {"device.id": "d1"})
OTLP_UNMAPPED = {"note": "maps onto no kind"}


def body_for(path: str, n: int = 1) -> tuple[bytes, dict[str, str]]:
    """A valid body of `n` records for a POST route, and its Content-Type."""
    if path == OTLP:
        return otlp_json(*([OTLP_GOOD[0]] * n)), {"Content-Type": "application/json"}
    return orjson.dumps([GOOD[path][0]] * n), {"Content-Type": "application/json"}


# ---- the document itself


def test_document_is_valid_openapi_3_1() -> None:
    assert doc()["openapi"].startswith("3.1.")
    validate_openapi(doc())


def test_document_is_pretty_printed_json() -> None:
    text = DOC_PATH.read_text()
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_security_public_routes_have_none_the_others_need_a_bearer_key() -> None:
    scheme = doc()["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert doc()["security"] == [{"apiKey": []}]
    public = {path for (_, path), op in operations().items() if op.get("security") == []}
    assert public == PUBLIC_PATHS
    for (_, path), op in operations().items():
        assert op.get("security") in ([], None), path  # others inherit the bearer requirement


def test_record_schemas_name_exactly_the_validators_fields() -> None:
    for kind, fields in FIELDS.items():
        schema = node(record_schema(kind))
        assert set(schema["properties"]) == fields, kind
        assert schema["additionalProperties"] is False, kind


def test_every_example_in_the_document_matches_its_schema() -> None:
    checked = 0

    def walk(value: Any, pointer: str) -> None:
        nonlocal checked
        if isinstance(value, dict):
            if "schema" in value and isinstance(value.get("examples"), dict):  # media type
                for name in value["examples"]:
                    ex = node(deref(f"{pointer}/examples/{escape(name)}"))
                    errors = schema_errors(f"{pointer}/schema", ex["value"])
                    assert not errors, f"{pointer}/examples/{name}: {errors}"
                    checked += 1
            if pointer.startswith("/components/schemas/") and isinstance(
                value.get("examples"), list
            ):
                for example in value["examples"]:
                    errors = schema_errors(pointer, example)
                    assert not errors, f"{pointer}: {example!r}: {errors}"
                    checked += 1
            for key, child in value.items():
                walk(child, f"{pointer}/{escape(key)}")
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, f"{pointer}/{i}")

    walk(doc(), "")
    assert checked >= 20


def test_post_operations_document_every_error_status_and_retry_after() -> None:
    for path in POSTS:
        op = f"/paths/{escape(path)}/post"
        statuses = set(node(op + "/responses"))
        assert {"400", "401", "403", "413", "415", "422", "503"} <= statuses, path
        for status in statuses - {"200", "202"}:
            schema = deref(f"{op}/responses/{status}/content/application~1json/schema")
            assert schema == "/components/schemas/ErrorBody", (path, status)
        unavailable = deref(f"{op}/responses/503")
        header = node(deref(f"{unavailable}/headers/Retry-After"))
        assert header["required"] is True


# ---- the document against the routes the app serves


async def test_served_document_equals_the_file(start: AppFactory) -> None:
    client = await start()
    r = await client.get("/openapi.json")  # public: no key
    assert r.status == 200
    assert await r.read() == DOC_PATH.read_bytes()
    assert await check(r, "/openapi.json", "get") == doc()


async def test_every_route_is_documented_and_every_documented_operation_is_a_route(
    start: AppFactory,
) -> None:
    client = await start()
    # the dashboard's page, sign-in and session API are for its own script (README, "Dashboard")
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/dashboard")
    }
    assert served == set(operations())


@pytest.mark.parametrize("path", POSTS)
async def test_documented_request_media_types_are_exactly_the_accepted_ones(
    start: AppFactory, path: str
) -> None:
    client = await start()
    documented = set(node(f"/paths/{escape(path)}/post/requestBody/content"))
    probes = documented | {
        "text/plain", "application/xml", "application/octet-stream", "application/x-protobuf",
        "application/json", "application/x-ndjson", "multipart/form-data",
    }  # fmt: skip
    for media in sorted(probes):
        r = await client.post(path, data=b"{}", headers=auth(**{"Content-Type": media}))
        assert (r.status != 415) == (media in documented), (media, r.status)
        await check(r, path)


# ---- record schemas agree with the validators


WINDOW = TimeWindow.around(int(time.time() * 1000), 395)
MINIMAL = {
    "access_log": {"ip": "192.0.2.1"},
    "device": {"device_id": "d1"},
    "event": {"event": "e"},
    "mail_scan": {"imb": TRACKING},
}


def validator_accepts(kind: str, record: Any) -> bool:
    try:
        KINDS[kind].validate(record, WINDOW)
    except RecordInvalid:
        return False
    return True


def schema_accepts(kind: str, record: Any) -> bool:
    return not schema_errors(record_schema(kind), record)


@pytest.mark.parametrize("path", INGEST)
def test_records_of_the_kind_tests_are_valid_and_unknown_fields_are_not(path: str) -> None:
    kind = ROUTE_KIND[path]
    for record in GOOD[path]:
        assert schema_accepts(kind, record), schema_errors(record_schema(kind), record)
        assert validator_accepts(kind, record)
        unknown = {**record, "favourite_colour": "blue"}
        assert not schema_accepts(kind, unknown)
        assert not validator_accepts(kind, unknown)


@pytest.mark.parametrize("kind", RECORD_SCHEMAS)
def test_documented_example_records_pass_the_validators(kind: str) -> None:
    for example in node(record_schema(kind))["examples"]:
        assert validator_accepts(kind, {**example, "time": None})  # the examples' time is fixed


@pytest.mark.parametrize("kind", RECORD_SCHEMAS)
def test_required_fields_agree(kind: str) -> None:
    required = node(record_schema(kind))["required"]
    assert set(required) == set(MINIMAL[kind])
    assert schema_accepts(kind, MINIMAL[kind]) and validator_accepts(kind, MINIMAL[kind])
    for field in required:
        for without in ({k: v for k, v in MINIMAL[kind].items() if k != field},
                        {**MINIMAL[kind], field: None}, {**MINIMAL[kind], field: ""}):  # fmt: skip
            assert not schema_accepts(kind, without), without
            assert not validator_accepts(kind, without), without


def _max_length(prop: dict[str, Any]) -> int | None:
    if "$ref" in prop:
        prop = {**node(prop["$ref"][1:]), **prop}
    length: int | None = prop.get("maxLength")
    return length


@pytest.mark.parametrize("kind", RECORD_SCHEMAS)
def test_string_length_limits_agree(kind: str) -> None:
    """Each documented maxLength is the validator's: N characters pass, N + 1 are refused."""
    probed = 0
    for name, prop in node(record_schema(kind))["properties"].items():
        limit = _max_length(prop)
        if limit is None or not re.search(prop.get("pattern", ""), "a" * limit):
            continue  # no limit, or a pattern that a run of letters cannot match
        for length, ok in ((limit, True), (limit + 1, False)):
            record = {**MINIMAL[kind], name: "a" * length}
            assert schema_accepts(kind, record) is ok, (name, length)
            assert validator_accepts(kind, record) is ok, (name, length)
        probed += 1
    assert probed >= 3


# (kind, record, accepted) where the schema can decide: both must agree with `accepted`.
AGREEMENT = [
    ("access_log", {"ip": 1}, False),
    ("access_log", {"ip": "192.0.2.1", "method": "G3T"}, False),
    ("access_log", {"ip": "192.0.2.1", "method": "post"}, True),
    *(("access_log", {"ip": "192.0.2.1", "status": v}, ok)
      for v, ok in ((0, True), (None, True), (99, False), (100, True), (599, True), (600, False),
                    ("200", True), ("200.0", False), (" 200", False), ("0200", False), ("600", False),
                    (True, False), (200.5, False))),
    *(("access_log", {"ip": "192.0.2.1", "bytes": v}, ok)
      for v, ok in ((0, True), (2**64 - 1, True), (-1, False), (2**64, False), (1.5, False), ("1", True), ("-1", False), ("1e3", False))),
    *(("access_log", {"ip": "192.0.2.1", "duration_ms": v}, ok)
      for v, ok in ((0, True), (1.5, True), (None, True), (-0.1, False), ("1", False), (True, False),
                    (3.2e10, True), (3.3e10, False), (1e39, False))),
    *(("access_log", {"ip": "192.0.2.1", "user_id": v}, ok)
      for v, ok in ((42, True), (-7, True), ("u", True), (None, True), (1.5, False), (True, False), ([], False))),
    *(("access_log", {"ip": "192.0.2.1", "time": v}, ok)
      for v, ok in ((NOW_ISO, True), (int(time.time()), True), (int(time.time() * 1000), True),
                    (None, True), (True, False), ({}, False), ([], False))),
    ("access_log", {"ip": "192.0.2.1", "host": 5}, False),
    ("access_log", [{"ip": "192.0.2.1"}], False),
    ("device", {"device_id": 7}, True),
    ("device", {"device_id": True}, False),
    ("device", {"device_id": "d", "ip": ""}, True),
    ("device", {"device_id": "d", "ip": None}, True),
    ("device", {"device_id": "d", "ip": 5}, False),
    ("event", {"event": 5}, False),
    *(("event", {"event": "e", "properties": v}, ok)
      for v, ok in (({"a": 1, "b": "x", "c": True, "d": 1.5, "e": None}, True), (None, True),
                    ({"1a": 1}, False), ({"a b": 1}, False), ({"a" * 64: 1}, True), ({"a" * 65: 1}, False),
                    ({"a": {"x": 1}}, False), ({"a": [1]}, False), ({"a": "x" * 512}, True),
                    ({"a": "x" * 513}, False), ({f"k{i}": i for i in range(64)}, True),
                    ({f"k{i}": i for i in range(65)}, False), ([], False), ("x", False))),
    *(("event", {"event": "e", "consent": v}, ok)
      for v, ok in ((["analytics"], True), ([], True), ("analytics, essential", True), ("", True),
                    (",preference,", True), (None, True), (["marketing"], False), ("marketing", False),
                    ("essential analytics", False), (5, False), ([1], False))),
    *(("event", {"event": "e", flag: v}, ok)
      for flag in ("gpc", "dnt")
      for v, ok in ((True, True), (False, True), (1, True), (0, True), ("1", True), ("0", True),
                    (None, True), ("yes", False), (2, False), ("true", False))),
    *(("mail_scan", {"imb": v}, ok)
      for v, ok in ((TRACKING + ROUTING, True), (TRACKING + ROUTING[:5], True), (TRACKING + ROUTING[:9], True),
                    (BARS, True), (BARS.lower(), True), ("0123", False), (TRACKING + "1", False),
                    (TRACKING[:1] + "5" + TRACKING[2:], False), (BARS[:-1], False), (BARS + "A", False),
                    (BARS[:-1] + "X", False), (int(TRACKING), False))),
    *(("mail_scan", {"imb": TRACKING, "facility_zip": v}, ok)
      for v, ok in (("20260", True), ("20260-1234", True), ("202601234", True), ("", True), (None, True),
                    ("2026", False), ("2026a", False), ("202601", False), (20260, False))),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "record", "accepted"), AGREEMENT)
def test_schema_and_validator_agree(kind: str, record: Any, accepted: bool) -> None:
    assert validator_accepts(kind, record) is accepted
    assert schema_accepts(kind, record) is accepted, schema_errors(record_schema(kind), record)


# ---- real answers against the documented schema of their status


@pytest.mark.parametrize("path", INGEST)
async def test_202_good_and_mixed_batches(start: AppFactory, path: str) -> None:
    client = await start()
    good = GOOD[path]
    r = await client.post(path, json=good, headers=auth())
    assert await check(r, path) == {"accepted": len(good), "rejected": 0, "errors": []}
    r = await client.post(path, json=good[0], headers=auth())  # one record, not an array
    assert (await check(r, path))["accepted"] == 1
    mixed = [*good, *BAD[path]]
    body = await check(await client.post(path, json=mixed, headers=auth()), path)
    assert (body["accepted"], body["rejected"]) == (len(good), len(BAD[path]))
    assert [e["index"] for e in body["errors"]] == list(range(len(good), len(mixed)))
    ndjson = b"".join(orjson.dumps(rec) + b"\n" for rec in mixed)
    for content_type in ("application/x-ndjson", "application/jsonl"):
        r = await client.post(path, data=ndjson, headers=auth(**{"Content-Type": content_type}))
        assert (await check(r, path))["rejected"] == len(BAD[path])


async def test_202_text_lines_compressed_and_truncated_errors(start: AppFactory) -> None:
    client = await start()
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    lines = (
        f'203.0.113.7 - frank [{stamp}] "GET /pricing HTTP/1.1" 200 5120 "-" "Mozilla/5.0"\n'
        "not a log line\n"
    )
    r = await client.post(
        "/v1/logs",
        data=gzip.compress(lines.encode()),
        headers=auth(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
    )
    body = await check(r, "/v1/logs")
    assert body["errors"] == [{"index": 1, "field": "line", "error": body["errors"][0]["error"]}]
    r = await client.post("/v1/logs", json=[{"ip": "bad"}] * 150, headers=auth())
    body = await check(r, "/v1/logs")
    assert body["rejected"] == 150 and len(body["errors"]) == 100
    assert body["errors_truncated"] is True


async def test_200_otlp_json_and_protobuf(start: AppFactory) -> None:
    client = await start()
    headers = auth(**{"Content-Type": "application/json"})
    r = await client.post(OTLP, data=otlp_json(*OTLP_GOOD), headers=headers)
    assert await check(r, OTLP) == {}
    r = await client.post(OTLP, data=otlp_json(*OTLP_GOOD, OTLP_UNMAPPED), headers=headers)
    partial = (await check(r, OTLP))["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "index 2" in partial["errorMessage"]

    request = json_format.Parse(otlp_json(*OTLP_GOOD, OTLP_UNMAPPED), ExportLogsServiceRequest())
    r = await client.post(
        OTLP,
        data=request.SerializeToString(),
        headers=auth(**{"Content-Type": "application/x-protobuf"}),
    )
    reply = ExportLogsServiceResponse()
    reply.ParseFromString(await check(r, OTLP))
    assert reply.partial_success.rejected_log_records == 1


@pytest.mark.parametrize("path", POSTS)
async def test_400_401_403_415_with_error_bodies(start: AppFactory, path: str) -> None:
    client = await start(tenants=scoped_tenants())
    json_type = {"Content-Type": "application/json"}
    good, content_type = body_for(path)
    answers = [
        (await client.post(path, data=b"{not json", headers=auth(**json_type)), 400),
        (await client.post(path, data=gzip.compress(good)[:20],
                           headers=auth(**json_type, **{"Content-Encoding": "gzip"})), 400),
        (await client.post(path, data=good, headers=auth(**content_type, **{"Idempotency-Key": "k" * 256})), 400),
        (await client.post(path, data=good, headers=content_type), 401),
        (await client.post(path, data=good, headers={**content_type, "Authorization": "Bearer nope"}), 401),
        (await client.post(path, data=good, headers=auth(ANALYST_KEY, **content_type)), 403),
        (await client.post(path, data=good, headers=auth(**{"Content-Type": "application/xml"})), 415),
        (await client.post(path, data=good, headers=auth(**content_type, **{"Content-Encoding": "compress"})), 415),
    ]  # fmt: skip
    for resp, status in answers:
        assert resp.status == status, await resp.text()
        body = await check(resp, path)
        assert body["error"] == resp.reason.lower()


@pytest.mark.parametrize("path", POSTS)
async def test_413_too_many_records(start: AppFactory, path: str) -> None:
    client = await start(server=ServerConfig(max_records=2))
    data, content_type = body_for(path, 3)
    r = await client.post(path, data=data, headers=auth(**content_type))
    assert r.status == 413
    assert "3 records" in (await check(r, path))["detail"]


async def test_413_wire_size(start: AppFactory) -> None:
    client = await start(server=ServerConfig(max_body_bytes=100))
    for path in POSTS:
        data, content_type = body_for(path, 5)
        r = await client.post(path, data=data, headers=auth(**content_type))
        assert r.status == 413
        await check(r, path)


@pytest.mark.parametrize("path", POSTS)
async def test_422_idempotency_key_reused_with_another_body(start: AppFactory, path: str) -> None:
    client = await start()
    one, content_type = body_for(path, 1)
    two, _ = body_for(path, 2)
    headers = auth(**content_type, **{"Idempotency-Key": f"req-{path}"})
    first = await client.post(path, data=one, headers=headers)
    first_body = await check(first, path)
    again = await client.post(path, data=one, headers=headers)
    assert (again.status, await check(again, path)) == (first.status, first_body)
    r = await client.post(path, data=two, headers=headers)
    assert r.status == 422
    assert (await check(r, path))["error"] == "unprocessable entity"


async def test_503_when_storage_fails(start: AppFactory, config: Config) -> None:
    client = await start(batch=replace(config.batch, insert_retries=1, max_delay_ms=0))
    client.app[SINK].close()  # the engine goes away under the running service
    for path in POSTS:
        data, content_type = body_for(path)
        r = await client.post(path, data=data, headers=auth(**content_type))
        assert r.status == 503, await r.text()
        await check(r, path)
        assert r.headers["Retry-After"] == "5"


async def test_503_when_the_queue_is_full_and_readyz_says_busy(
    start: AppFactory, config: Config
) -> None:
    client = await start(batch=replace(config.batch, max_pending_rows=0))
    for path in POSTS:
        data, content_type = body_for(path)
        r = await client.post(path, data=data, headers=auth(**content_type))
        assert r.status == 503, await r.text()
        await check(r, path)
        assert r.headers["Retry-After"] == "1"
    r = await client.get("/readyz")
    assert r.status == 503
    assert (await check(r, "/readyz", "get"))["status"] == "busy"


async def test_policy_api(start: AppFactory) -> None:
    client = await start(tenants=scoped_tenants())
    toml = {"Content-Type": "application/toml"}
    view = await check(
        await client.get("/v1/policy", headers=auth(ANALYST_KEY)), "/v1/policy", "get"
    )
    assert view["tenant_id"] == "acme" and view["tenant_override"] is None
    version = view["version"]
    refused = [
        (await client.put("/v1/policy", data=b"version = 99\n", headers=auth(ANALYST_KEY, **toml)), "put", 403),
        (await client.get("/v1/policy", headers=auth()), "get", 403),
        (await client.get("/v1/policy"), "get", 401),
        (await client.put("/v1/policy", data=b"\xff", headers=auth(PRIVACY_KEY, **toml)), "put", 400),
        (await client.put("/v1/policy", data=b"version = ", headers=auth(PRIVACY_KEY, **toml)), "put", 422),
        (await client.put("/v1/policy", data=f"version = {version + 1}\n[ip]\nipv4_prefix = 40\n".encode(),
                          headers=auth(PRIVACY_KEY, **toml)), "put", 422),
        (await client.put("/v1/policy", data=f"version = {version}\n".encode(),
                          headers=auth(PRIVACY_KEY, **toml)), "put", 422),
    ]  # fmt: skip
    for resp, method, status in refused:
        assert resp.status == status, await resp.text()
        await check(resp, "/v1/policy", method)
    override = f'version = {version + 1}\n[mail]\nrouting_zip = "zip3"\n'
    r = await client.put("/v1/policy", data=override.encode(), headers=auth(PRIVACY_KEY, **toml))
    change = await check(r, "/v1/policy", "put")
    assert (change["old_version"], change["new_version"]) == (version, version + 1)
    assert any(line.startswith("mail.routing_zip") for line in change["diff"])
    view = await check(
        await client.get("/v1/policy", headers=auth(PRIVACY_KEY)), "/v1/policy", "get"
    )
    assert view["tenant_override"] == override and view["settings"]["mail.routing_zip"] == "zip3"

    r = await client.get("/v1/policy/audit", headers=auth(ANALYST_KEY))
    assert r.status == 403
    await check(r, "/v1/policy/audit", "get")
    audit = await check(
        await client.get("/v1/policy/audit", headers=auth(PRIVACY_KEY)), "/v1/policy/audit", "get"
    )
    assert audit["entries"][0]["source"] == "api"


async def test_public_routes(start: AppFactory) -> None:
    client = await start()
    assert await check(await client.get("/healthz"), "/healthz", "get") == {"status": "ok"}
    ready = await check(await client.get("/readyz"), "/readyz", "get")
    assert ready == {"status": "ready", "queued_rows": 0}
    await client.post("/v1/logs", json=GOOD["/v1/logs"], headers=auth())
    metrics = await check(await client.get("/metrics"), "/metrics", "get")
    assert 'collector_records_accepted_total{kind="access_log"} 2' in metrics


async def test_unknown_path_and_method_answer_documented_error_bodies(start: AppFactory) -> None:
    """404 and 405 belong to no operation; the document describes them as ErrorBody."""
    client = await start()
    for resp, status in (
        (await client.get("/v1/nothing-here", headers=auth()), 404),
        (await client.get("/v1/nothing-here"), 401),
        (await client.get("/v1/logs", headers=auth()), 405),
        (await client.post("/healthz"), 405),
    ):
        assert resp.status == status
        assert resp.content_type == "application/json"
        assert not schema_errors("/components/schemas/ErrorBody", await resp.json())
