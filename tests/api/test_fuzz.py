"""Bad input never breaks the service: a clear problem+json (4xx), and nothing appended.

Malformed JSON, wrong media types, oversized bodies, unknown fields, bad signatures,
replays, SQL-ish and path-traversal strings, invalid codes and bad credentials; then
a hypothesis fuzz target on the event-submission parser (random JSON values and
mutations of a valid event, signed and custodial). Each runs on every backend.

A test sends many related requests and reports *every* one that was not a clean
refusal (:class:`Refusals`), rather than stopping at the first.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import note
from ledger.entry import sign_submission
from schemas.codes import BatteryType, ProductType, generate_code
from schemas.events import Event
from tests.api.conftest import Api

PACK = "001PEAB0000001G1C0000001"
OTHER_PACK = "001PEAB0000001G1C0000002"
PROBLEM = "application/problem+json"
FUZZ_EXAMPLES = 200
CHUNK = 64 * 1024
WRITE_PATHS = ["/v1/events", "/v1/events/custodial", "/v1/items"]
FUZZ_PATHS = ["/v1/events", "/v1/events/custodial"]

SQLISH = [
    "'; DROP TABLE ledger_entries; --",
    "1' OR '1'='1",
    '" OR ""="',
    "1; SELECT pg_sleep(5)",
]
TRAVERSAL = ["../../etc/passwd", "%2e%2e%2f", "..%2F..%2Fetc%2Fpasswd", "....//....//etc/passwd"]
ODD = ["<script>alert(1)</script>", "溯源", "\u0000", "x" * 5000]
HOSTILE = SQLISH + TRAVERSAL + ODD
BAD_CODES = [
    "",
    "NOTACODE",
    PACK.lower(),
    PACK[:-1],
    PACK + "0",
    PACK[:-1] + "Z",  # the last serial character is not a digit
    "001PEAB0000001G1C00000-1",
]
MALFORMED_JSON = [b"{", b"[{]", b'[{"a": 1,}]', b"\xff\xfe\x00", b"", b"[1] trailing", b"NaN"]
NOT_JSON_MEDIA_TYPES = ["text/plain", "application/xml", "application/octet-stream", None]


@dataclass
class World:
    """Two organisations (the maker also holds its own signing key) and one pack."""

    api: Api
    maker_key: str
    receiver_key: str
    signer: note.Signer
    _serial: int = 100

    def log_size(self) -> int:
        return len(self.api.services.tracer.log)

    def head(self, code: str = PACK) -> str:
        state = self.api.services.tracer.world.item(code)
        assert state is not None
        return state.head

    def new_pack(self) -> str:
        """Commission a fresh pack for the maker; return its code."""
        self._serial += 1
        code = generate_code(
            random.Random(0), manufacturer="001", product_type=ProductType.PACK,
            battery_type=BatteryType.LFP, spec="1A", trace_code="0000009",
            date=date(2024, 3, 9), serial=self._serial,
        )  # fmt: skip
        response = self.api.post("/v1/items", self.maker_key, json=[{"code": code}])
        assert response.status_code == 201, response.text
        return code

    def signed(
        self,
        data: dict[str, Any],
        *,
        key: str,
        prev: dict[str, str | None] | None = None,
        when: datetime | None = None,
        signer: note.Signer | None = None,
    ) -> dict[str, Any]:
        """A signed submission (JSON) by the maker; ``prev`` defaults to the pack's head."""
        event = Event.model_validate(
            {
                "actor": "catl",
                "event_time": (when or datetime.now(UTC)).isoformat(),
                "region": "350000",
                "idempotency_key": key,
                "prev": prev if prev is not None else {PACK: self.head()},
                "data": data,
            }
        )
        by = signer or self.signer
        submission = sign_submission(
            event.kind, event.body(), key_id=self.signer.key_id, key=by.private_key
        )
        return submission.to_json()


def inspect(soh: float = 80.0, item: str = PACK) -> dict[str, Any]:
    return {"type": "inspect", "item": item, "soh_pct": soh, "grade": "B"}


@pytest.fixture
def world(api: Api) -> World:
    signer = note.Signer.generate("catl")
    maker = api.actor(
        "catl", "battery_maker", "350000", verifier_keys=[signer.verifier.to_string()]
    )
    receiver = api.actor("byd", "collector")
    response = api.post("/v1/items", maker, json=[{"code": PACK, "mass_kg": 400}])
    assert response.status_code == 201, response.text
    return World(api, maker, receiver, signer)


def problem_errors(response: Any, status: int | None = None) -> str | None:
    """What keeps ``response`` from being a 4xx RFC 9457 problem (of ``status``); ``None`` if nothing."""
    where = f"{response.status_code} {response.text[:300]!r}"
    if not 400 <= response.status_code < 500:
        return f"not a 4xx: {where}"
    if status is not None and response.status_code != status:
        return f"expected {status}: {where}"
    if not response.headers.get("content-type", "").startswith(PROBLEM):
        return f"not {PROBLEM}: {response.headers.get('content-type')} {where}"
    body = response.json()
    if body.get("status") != response.status_code or not body.get("type") or not body.get("title"):
        return f"problem members missing: {where}"
    if not isinstance(body.get("detail", ""), str):  # optional in RFC 9457 §3.1
        return f"detail is not a string: {where}"
    return None


def assert_problem(response: Any, status: int | None = None) -> dict[str, Any]:
    error = problem_errors(response, status)
    assert error is None, error
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Refusals:
    """Requests that must each be refused with a problem and append nothing; reports all misses."""

    world: World
    misses: list[str] = field(default_factory=list)
    cases: int = 0

    def expect(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        status: int | None = None,
        label: str = "",
        headers: dict[str, str] | None = None,
        empty_ok: bool = False,
        **request: Any,
    ) -> None:
        """Send ``method path`` (``key`` as a bearer token) and expect a refusal (of ``status``).

        With ``empty_ok``, a 200 with an empty answer (``{}``, ``[]``, an empty page) also passes.
        """
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        sent.update(headers or {})
        label = f"{method} {path[:80]} {label}".strip()
        self.cases += 1
        before = self.world.log_size()
        try:
            response = self.world.api.client.request(method, path, headers=sent, **request)
            if not (empty_ok and response.status_code == 200 and _empty(response.json())):
                self.judge(label, response, status)
        except Exception as exc:  # the test client re-raises what the app did not handle
            self.misses.append(f"{label}: server error, {type(exc).__name__}: {str(exc)[:200]}")
        if self.world.log_size() != before:
            self.misses.append(f"{label}: the log grew by {self.world.log_size() - before}")

    def judge(self, label: str, response: Any, status: int | None = None) -> None:
        """Count ``response`` as a case: a miss unless it is a problem (of ``status``)."""
        error = problem_errors(response, status)
        if error is not None:
            self.misses.append(f"{label}: {error}")

    def __enter__(self) -> Refusals:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert not self.misses, f"{len(self.misses)} of {self.cases} cases:\n" + "\n".join(
                self.misses
            )
            self.world.api.services.tracer.log.verify()


def _empty(answer: Any) -> bool:
    return answer in ({}, []) or (isinstance(answer, dict) and answer.get("data") == [])


def _writer(world: World, path: str) -> str:
    return world.api.admin_key if path == "/v1/actors" else world.maker_key


def _chunks(body: bytes) -> Iterator[bytes]:
    """``body`` as a stream: the client sends it chunked, with no Content-Length."""
    for i in range(0, len(body), CHUNK):
        yield body[i : i + CHUNK]


# --- malformed JSON, media types, size ---


def test_malformed_json_is_a_problem(world: World) -> None:
    json_type = {"Content-Type": "application/json"}
    with Refusals(world) as refusals:
        for path in [*WRITE_PATHS, "/v1/actors"]:
            for raw in MALFORMED_JSON:
                refusals.expect(
                    "POST", path, key=_writer(world, path), label=repr(raw), content=raw,
                    headers=json_type,
                )  # fmt: skip


def test_bodies_that_are_not_json_are_problems(world: World) -> None:
    body = json.dumps([{"code": OTHER_PACK}]).encode()
    files = {"events": ("events.json", body, "application/json")}
    key = world.maker_key
    with Refusals(world) as refusals:
        for path in WRITE_PATHS:
            for media_type in NOT_JSON_MEDIA_TYPES:
                headers = {} if media_type is None else {"Content-Type": media_type}
                refusals.expect(
                    "POST", path, key=key, label=f"as {media_type}", content=body, headers=headers
                )
            refusals.expect("POST", path, key=key, label="as a form", data={"code": OTHER_PACK})
            refusals.expect("POST", path, key=key, label="as multipart", files=files)


def test_bodies_over_the_limit_are_413(world: World) -> None:
    limit = world.api.services.settings.max_body_bytes
    body = json.dumps([{"code": OTHER_PACK, "padding": "x" * limit}]).encode()
    json_type = {"Content-Type": "application/json"}
    with Refusals(world) as refusals:
        for path in WRITE_PATHS:
            refusals.expect(
                "POST", path, key=world.maker_key, status=413, headers=json_type, content=body,
                label=f"{len(body)} bytes with Content-Length",
            )  # fmt: skip
            refusals.expect(
                "POST", path, key=world.maker_key, status=413, headers=json_type,
                content=_chunks(body), label=f"{len(body)} bytes chunked (no Content-Length)",
            )  # fmt: skip


# --- unknown fields ---


def test_unknown_fields_are_refused(world: World) -> None:
    maker, admin = world.maker_key, world.api.admin_key
    envelope = {**world.signed(inspect(), key="unknown-envelope"), "note": "ignored?"}
    in_body = world.signed(inspect(), key="unknown-body")
    in_body["body"] = {**in_body["body"], "extra": 1}
    custodial_event = {"idempotency_key": "unknown-1", "data": inspect(), "extra": 1}
    custodial_data = {"idempotency_key": "unknown-2", "data": {**inspect(), "extra": 1}}
    # A misspelt mass must not commission a pack without its mass.
    registration = [{"code": OTHER_PACK, "mass_kgs": 400}]
    actor = {"id": "acme", "name": "ACME", "role": "recycler", "region": "440000", "extra": 1}
    with Refusals(world) as refusals:
        refusals.expect("POST", "/v1/events", key=maker, label="envelope + note", json=[envelope])
        refusals.expect("POST", "/v1/events", key=maker, label="body + extra", json=[in_body])
        custodial = "/v1/events/custodial"
        refusals.expect("POST", custodial, key=maker, label="+ extra", json=[custodial_event])
        refusals.expect("POST", custodial, key=maker, label="data + extra", json=[custodial_data])
        refusals.expect("POST", "/v1/items", key=maker, label="+ mass_kgs", json=registration)
        refusals.expect("POST", "/v1/actors", key=admin, label="+ extra", json=actor)


# --- signatures and replays ---


def _flip(sig: str) -> str:
    raw = bytearray(base64.b64decode(sig))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _attacks(world: World) -> dict[str, dict[str, Any]]:
    """A valid signed envelope, broken in every way a signature can be."""
    env = world.signed(inspect(), key="attacked")
    return {
        "flipped bit": {**env, "sig": _flip(env["sig"])},
        "all zeros": {**env, "sig": base64.b64encode(bytes(64)).decode()},
        "not base64": {**env, "sig": "!" * 86},
        "too short": {**env, "sig": env["sig"][:40]},
        "unknown key id": {**env, "key_id": "catl+00000000"},
        "another organisation's key id": {**env, "key_id": "byd+deadbeef"},
        "body changed after signing": {**env, "body": {**env["body"], "read_point": "dock 7"}},
        "kind changed after signing": {**env, "kind": "event.retire"},
        "signed by a stranger's key": world.signed(
            inspect(), key="stranger", signer=note.Signer.generate("catl")
        ),
    }


def test_bad_signatures_are_refused(world: World) -> None:
    with Refusals(world) as refusals:
        for name, envelope in _attacks(world).items():
            refusals.expect(
                "POST", "/v1/events", key=world.maker_key, status=422, label=name, json=[envelope]
            )


def test_a_replayed_submission_returns_its_receipt_and_appends_nothing(world: World) -> None:
    envelope = world.signed(inspect(), key="replayed")
    first = world.api.post("/v1/events", world.maker_key, json=[envelope])
    assert first.status_code == 201, first.text
    size = world.log_size()
    again = world.api.post("/v1/events", world.maker_key, json=[envelope])
    assert again.status_code == 201, again.text
    assert again.json()[0]["seq"] == first.json()[0]["seq"] and again.json()[0]["replayed"]
    assert world.log_size() == size


def test_a_replayed_event_under_a_new_idempotency_key_is_refused(world: World) -> None:
    prev: dict[str, str | None] = {PACK: world.head()}
    when = datetime.now(UTC)
    once = world.signed(inspect(), key="once", prev=prev, when=when)
    first = world.api.post("/v1/events", world.maker_key, json=[once])
    assert first.status_code == 201, first.text
    # The same event (same time, data and prev) signed again under another key.
    twice = world.signed(inspect(), key="twice", prev=prev, when=when)
    with Refusals(world) as refusals:
        refusals.expect("POST", "/v1/events", key=world.maker_key, label="again", json=[twice])


def test_a_stale_replay_after_custody_moved_is_refused(world: World) -> None:
    api, commissioned = world.api, world.head()
    offer = world.signed({"type": "handover", "items": [PACK], "to": "byd"}, key="offer")
    response = api.post("/v1/events", world.maker_key, json=[offer])
    assert response.status_code == 201, response.text
    handover = response.json()[0]["event_id"]
    accept = [{"idempotency_key": "take",
               "data": {"type": "accept", "handover": handover, "items": [PACK]}}]  # fmt: skip
    assert api.post("/v1/events/custodial", world.receiver_key, json=accept).status_code == 201
    # The maker's old offer, re-signed under a new key: the pack has moved on since.
    stale = world.signed(
        {"type": "handover", "items": [PACK], "to": "byd"},
        key="offer-again",
        prev={PACK: commissioned},
    )
    with Refusals(world) as refusals:
        refusals.expect("POST", "/v1/events", key=world.maker_key, status=409, json=[stale])


def test_a_retried_custodial_event_appends_once(world: World) -> None:
    event = [{"idempotency_key": "retry-me", "data": inspect()}]
    first = world.api.post("/v1/events/custodial", world.maker_key, json=event)
    assert first.status_code == 201, first.text
    size = world.log_size()
    again = world.api.post("/v1/events/custodial", world.maker_key, json=event)
    if again.is_success:
        assert again.json()[0]["seq"] == first.json()[0]["seq"]
    else:
        assert_problem(again)
    assert world.log_size() == size


# --- hostile strings, invalid codes, credentials ---


def test_hostile_strings_in_paths_are_problems(world: World) -> None:
    maker, admin = world.maker_key, world.api.admin_key
    with Refusals(world) as refusals:
        for text in HOSTILE:
            segment = quote(text, safe="")
            for path in [f"/v1/items/{segment}", f"/v1/items/{segment}/history",
                         f"/v1/actors/{segment}"]:  # fmt: skip
                refusals.expect("GET", path, key=maker)
            for path in [f"/v1/ledger/bundle/{segment}", f"/v1/ledger/proofs/inclusion/{segment}",
                         f"/v1/ledger/witnesses/{segment}"]:  # fmt: skip
                refusals.expect("GET", path)
            for path in [f"/v1/actors/{segment}/api-keys", f"/v1/api-keys/{segment}/revoke"]:
                refusals.expect("POST", path, key=admin)
            path = f"/v1/signing-keys/{segment}/revoke"
            refusals.expect("POST", path, key=admin, json={"reason": "fuzz"})


def test_hostile_strings_in_query_parameters_find_nothing(world: World) -> None:
    api, maker = world.api, world.maker_key
    with Refusals(world) as refusals:
        for text in HOSTILE:
            for name in ("code", "vin", "status", "custodian", "cursor"):
                response = api.get("/v1/items", maker, params={name: text})
                if response.status_code == 200:
                    assert response.json()["data"] == [], (name, text)
                else:
                    refusals.judge(f"GET /v1/items?{name}={text[:40]!r}", response)
            response = api.get("/v1/actors", maker, params={"cursor": text})
            if response.status_code != 200:
                refusals.judge(f"GET /v1/actors?cursor={text[:40]!r}", response)
            for path, params in [
                ("/v1/actors", {"limit": text}),
                ("/v1/ledger/entries", {"start": text}),
                ("/v1/ledger/entries", {"end": text}),
                ("/v1/ledger/proofs/consistency", {"old": text, "new": "1"}),
            ]:
                refusals.expect("GET", path, key=maker, label=f"{params!r:.60}", params=params)


BIG = str(2**63)
"""One past the largest 64-bit integer: what a database column holds no more."""
NUMBER_CASES = [
    ("/v1/ledger/bundle/-1", {}),
    (f"/v1/ledger/bundle/{BIG}", {}),
    ("/v1/ledger/proofs/inclusion/-1", {}),
    (f"/v1/ledger/proofs/inclusion/{BIG}", {}),
    ("/v1/ledger/witnesses/-1", {}),
    (f"/v1/ledger/witnesses/{BIG}", {}),
    ("/v1/ledger/entries", {"start": BIG}),
    ("/v1/ledger/entries", {"start": "5", "end": "2"}),
    ("/v1/ledger/entries", {"start": "0", "end": BIG}),
    ("/v1/ledger/proofs/consistency", {"old": "5", "new": "2"}),
    ("/v1/ledger/proofs/consistency", {"old": "1", "new": BIG}),
    ("/v1/items", {"limit": BIG}),
]


def test_numbers_out_of_range_are_problems_or_empty(world: World) -> None:
    """Negative, inverted and beyond-64-bit numbers in paths and queries: never a 5xx."""
    with Refusals(world) as refusals:
        for path, params in NUMBER_CASES:
            refusals.expect(
                "GET", path, key=world.maker_key, label=str(params), params=params, empty_ok=True
            )


def test_hostile_strings_in_event_fields_are_problems(world: World) -> None:
    maker = world.maker_key
    with Refusals(world) as refusals:
        for text in HOSTILE:
            too_long = (text * 201)[:201]  # free text is limited to 200 characters
            bodies: dict[str, dict[str, Any]] = {
                "idempotency_key": {"idempotency_key": text, "data": inspect()},
                "item": {"idempotency_key": "h", "data": {**inspect(), "item": text}},
                "handover to": {
                    "idempotency_key": "h",
                    "data": {"type": "handover", "items": [PACK], "to": text},
                },
                "read_point (too long)": {
                    "idempotency_key": "h",
                    "read_point": too_long,
                    "data": inspect(),
                },
                "region": {"idempotency_key": "h", "region": text, "data": inspect()},
            }
            for name, body in bodies.items():
                refusals.expect(
                    "POST", "/v1/events/custodial", key=maker, label=f"{name} = {text[:40]!r}",
                    json=[body],
                )  # fmt: skip
            refusals.expect(
                "POST", "/v1/items", key=maker, label=f"code {text[:40]!r}", json=[{"code": text}]
            )
            actor = {"id": text, "name": "x", "role": "recycler", "region": "440000"}
            refusals.expect(
                "POST", "/v1/actors", key=world.api.admin_key, label=f"id {text[:40]!r}", json=actor
            )


def test_hostile_free_text_is_refused_or_kept_verbatim(world: World) -> None:
    """Free text (a read point, a reason) may hold anything short enough: kept exactly, or refused."""
    api, log = world.api, world.api.services.tracer.log
    for text in HOSTILE:
        pack = world.new_pack()
        for field_name, event in [
            ("read_point", {"idempotency_key": "rp", "read_point": text, "data": inspect(item=pack)}),
            ("reason", {"idempotency_key": "why",
                        "data": {"type": "retire", "item": pack, "reason": text}}),
        ]:  # fmt: skip
            before = world.log_size()
            response = api.post("/v1/events/custodial", world.maker_key, json=[event])
            if not response.is_success:
                assert_problem(response)
                assert world.log_size() == before
                continue
            body = log.entry(response.json()[0]["seq"]).body
            kept = body.get("read_point") if field_name == "read_point" else body["data"]["reason"]
            assert kept == text, (field_name, text[:40])
    log.verify()


def test_invalid_codes_are_problems(world: World) -> None:
    maker = world.maker_key
    with Refusals(world) as refusals:
        for code in BAD_CODES:
            refusals.expect("POST", "/v1/items", key=maker, label=repr(code), json=[{"code": code}])
            event = {"idempotency_key": "bad-code", "data": inspect(item=code)}
            refusals.expect(
                "POST", "/v1/events/custodial", key=maker, label=repr(code), json=[event]
            )
            if code:
                refusals.expect("GET", f"/v1/items/{quote(code, safe='')}", key=maker, status=404)


BAD_CREDENTIALS = [
    (None, 401),
    ("Basic Y2F0bDpjYXRs", 401),
    ("Bearer", 401),
    ("Bearer sy_00_nope", 401),
    ("Bearer not-a-key", 401),
    ("administrator", 403),  # an administrator records no events
]


def test_bad_credentials_write_nothing(world: World) -> None:
    event = [{"idempotency_key": "cred", "data": inspect()}]
    with Refusals(world) as refusals:
        for authorization, status in BAD_CREDENTIALS:
            headers = {}
            if authorization == "administrator":
                headers["Authorization"] = f"Bearer {world.api.admin_key}"
            elif authorization is not None:
                headers["Authorization"] = authorization
            for path, body in [
                ("/v1/events/custodial", event),
                ("/v1/items", [{"code": OTHER_PACK}]),
            ]:
                refusals.expect(
                    "POST",
                    path,
                    status=status,
                    label=str(authorization),
                    headers=headers,
                    json=body,
                )


# --- the fuzz target ---

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)


def _slots(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``doc`` (the root excluded)."""
    if isinstance(doc, dict):
        members: Any = doc.items()
    elif isinstance(doc, list):
        members = enumerate(doc)
    else:
        return
    for key, value in members:
        yield (*path, key)
        yield from _slots(value, (*path, key))


@st.composite
def mutations(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with 1-3 random edits: replace, delete or add a member, anywhere in it."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(doc))
        if not slots:
            break
        path = draw(st.sampled_from(slots))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(json_values)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return doc


FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _submit_and_check(world: World, path: str, body: Any) -> None:
    """POST ``body``: never a 5xx; a refusal is problem+json and appends nothing."""
    before = world.log_size()
    response = world.api.post(path, world.maker_key, json=body)
    assert response.status_code < 500, (path, body, response.text[:500])
    if response.is_success:
        fresh = [r for r in response.json() if not r.get("replayed")]
        assert world.log_size() == before + len(fresh), (path, body)
    else:
        assert_problem(response)
        assert world.log_size() == before, (path, body, response.text[:300])


@pytest.mark.parametrize("path", FUZZ_PATHS)
def test_fuzz_random_json_never_breaks_the_parser(world: World, path: str) -> None:
    @FUZZ_SETTINGS
    @given(body=json_values | st.lists(json_values, min_size=1, max_size=3))
    def run(body: Any) -> None:
        _submit_and_check(world, path, body)

    run()
    world.api.services.tracer.log.verify()


@pytest.mark.parametrize("path", FUZZ_PATHS)
def test_fuzz_mutated_events_never_break_the_parser(world: World, path: str) -> None:
    valid = {
        "/v1/events": [world.signed(inspect(61.0), key="fuzz-signed")],
        "/v1/events/custodial": [{"idempotency_key": "fuzz-custodial", "data": inspect(62.0)}],
    }

    @FUZZ_SETTINGS
    @given(body=mutations(valid[path]))
    def run(body: Any) -> None:
        _submit_and_check(world, path, body)

    run()
    world.api.services.tracer.log.verify()
