"""The read-only Confluent registry API and the registry client, on the real Starlette app."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from core.errors import InvalidMessage
from core.settings import Settings
from schemas.codec import CATALOGUE
from schemas.examples import example_record
from schemas.kinds import KINDS, Kind
from schemas.models import ERASURE_COMMAND, SHARED_TICKET_ORDER, TICKET_ORDER
from schemas.registry_api import create_app, schema_text
from schemas.registry_client import RegistryClient, RegistryError, catalogue_for, resolve_ids


@pytest.fixture(scope="module")
def http() -> TestClient:
    return TestClient(create_app(partners=["observatoire", "reseau-danse"]))


def test_schema_by_id_is_self_contained(http: TestClient) -> None:
    response = http.get("/schemas/ids/1002")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.schemaregistry.v1+json")
    schema = json.loads(response.json()["schema"])
    subject = next(f["type"] for f in schema["fields"] if f["name"] == "subject")
    assert subject["name"] == "Subject" and any(f["name"] == "phone" for f in subject["fields"])
    assert http.get("/schemas/ids/1001/versions").json() == [{"subject": TICKET_ORDER, "version": 1}]


def test_subjects_under_both_strategies(http: TestClient) -> None:
    subjects = http.get("/subjects").json()
    assert TICKET_ORDER in subjects and "partner.observatoire.ticketing-value" in subjects
    assert "partner.reseau-danse.erasure-value" in subjects and "partner.observatoire.campaign-value" in subjects
    assert http.get("/subjects/partner.observatoire.campaign-value/versions/latest").json()["id"] == 2201
    topic = http.get("/subjects/partner.observatoire.ticketing-value/versions/latest").json()
    record = http.get(f"/subjects/{SHARED_TICKET_ORDER}/versions/latest").json()
    latest = CATALOGUE.entry(SHARED_TICKET_ORDER).schema_id
    assert topic["id"] == record["id"] == latest and topic["schema"] == record["schema"]
    assert http.get("/subjects/partner.any-partner.erasure-value/versions/1").json()["id"] == 2101
    assert http.get(f"/subjects/raw.opera-lyon-{TICKET_ORDER}/versions").json() == [1, 2]
    assert http.get(f"/subjects/{TICKET_ORDER}/versions/1/schema").json()["name"] == "TicketOrderPlaced"
    assert http.get("/schemas/ids/2101/subjects").json() == [
        ERASURE_COMMAND, "partner.observatoire.erasure-value", "partner.reseau-danse.erasure-value"]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/schemas/ids/7", 404, 40403), ("/subjects/nope/versions", 404, 40401),
    (f"/subjects/{TICKET_ORDER}/versions/9", 404, 40402), ("/subjects/partner.x1.unknown-value/versions", 404, 40401),
])
def test_errors_use_confluent_codes(http: TestClient, path: str, status: int, code: int) -> None:
    response = http.get(path)
    assert response.status_code == status and response.json()["error_code"] == code


def test_client_lookup_and_idempotent_register(http: TestClient) -> None:
    client = RegistryClient(client=http)
    entry = CATALOGUE.entry(TICKET_ORDER)
    assert client.lookup(TICKET_ORDER, schema_text(entry)) == (1002, 2)
    assert client.register(TICKET_ORDER, entry.raw) == 1002
    assert client.schema(2001)["name"] == "SharedTicketOrder"
    assert resolve_ids(client) == {e.schema_id: e.schema_id for e in CATALOGUE.all_entries()}
    assert resolve_ids(client, register=False) == resolve_ids(client)


def test_registering_a_new_schema_is_refused_read_only(http: TestClient) -> None:
    evolved = dict(CATALOGUE.entry(TICKET_ORDER).raw)
    evolved["fields"] = [*evolved["fields"], {"name": "seat_zone", "type": ["null", "string"], "default": None}]
    with pytest.raises(RegistryError) as info:
        RegistryClient(client=http).register(TICKET_ORDER, evolved)
    assert info.value.status == 422 and info.value.error_code == 42205
    with pytest.raises(RegistryError) as lookup:
        RegistryClient(client=http).lookup(TICKET_ORDER, evolved)
    assert lookup.value.error_code == 40403


def test_unreachable_registry_is_a_typed_error() -> None:
    with pytest.raises(RegistryError):
        RegistryClient("http://127.0.0.1:9", timeout=0.5).subjects()


def test_remapped_catalogue_writes_and_reads_external_ids() -> None:
    remapped = CATALOGUE.with_ids({1002: 77, 1001: 76})
    record = example_record(CATALOGUE.entry(TICKET_ORDER).raw)
    data = remapped.encode(TICKET_ORDER, record)
    assert int.from_bytes(data[1:5], "big") == 77
    assert remapped.decode(data)[0] == TICKET_ORDER
    with pytest.raises(InvalidMessage):
        remapped.decode(CATALOGUE.encode(TICKET_ORDER, record))


def test_without_an_external_registry_the_manifest_ids_are_used() -> None:
    assert Settings().schema_registry_url is None
    assert catalogue_for(None) is CATALOGUE


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.stream)
def test_every_partner_stream_resolves_to_its_shared_schema(http: TestClient, kind: Kind) -> None:
    """Each kind's partner topic (``partner.<id>.<stream>``) is a TopicNameStrategy subject: a
    partner's standard client finds the schema of ``partner.<id>.web`` as of ``...ticketing``."""
    subject = f"partner.observatoire.{kind.stream}-value"
    assert subject in http.get("/subjects").json()
    latest = http.get(f"/subjects/{subject}/versions/latest")
    assert latest.status_code == 200, latest.text
    assert latest.json()["id"] == CATALOGUE.entry(kind.schema).schema_id
