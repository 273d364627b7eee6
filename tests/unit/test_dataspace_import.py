"""Agreements back from ODRL, and Prometheus-X contracts into agreements: the round trip gives the
same agreement; what cannot be enforced is refused with its reasons (and the CLI writes nothing);
what is lost is listed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyld import jsonld
from typer.testing import CliRunner

from schemas.agreements import Agreement, load_agreements
from schemas.dataspace import dsp, odrl, prometheus_x
from schemas.dataspace.profile import NS, PolicyRefused
from techne.cli import app
from tests.dataspace_helpers import DSP, expand, loader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "dataspace"
DEPLOY = Path(__file__).parents[2] / "deploy" / "agreements"
_FROZEN = load_agreements(FIXTURES / "agreements")
AGREEMENTS = _FROZEN + [a for a in load_agreements(DEPLOY) if a not in _FROZEN]  # the live ones too
CONTRACT = json.loads((FIXTURES / "prometheus-x-contract.json").read_text(encoding="utf-8"))
ORDERS = "https://catalog.prometheus-x.example/v1/catalog/dataresources/ticket-orders"
PARTIES = {ORDERS: "ticket.order_placed"}  # a data resource of the catalogue is one of our event types


def normal(agreement: Agreement) -> dict[str, Any]:
    """The agreement's terms, lists as sets (order in a YAML list carries no meaning, except purposes:
    the first consented one is the one an event is shared for)."""
    data = agreement.model_dump(mode="json")
    for key in ("provider_venues", "event_types", "allowed_fields"):
        data[key] = sorted(data[key])
    return data


@pytest.mark.parametrize("agreement", AGREEMENTS, ids=lambda a: a.id)
def test_yaml_to_odrl_to_yaml_gives_the_same_agreement(agreement: Agreement) -> None:
    doc = json.loads(json.dumps(odrl.document([agreement])))  # through JSON text, as a partner would read it
    (back,) = odrl.from_document(doc)
    assert normal(back.agreement) == normal(agreement)
    assert back.lost == ()


def policy() -> dict[str, Any]:
    return copy.deepcopy(odrl.document(AGREEMENTS[:1])["@graph"][0])


def refusal(doc: Any) -> str:
    with pytest.raises(PolicyRefused) as caught:
        odrl.from_document(doc)
    return str(caught.value)


def test_an_unknown_constraint_is_refused_with_its_name() -> None:
    doc = policy()
    doc["permission"][0]["constraint"].append({"leftOperand": "spatial", "operator": "eq", "rightOperand": "FR"})
    assert "unknown constraint 'spatial' 'eq': the bus cannot enforce it" in refusal(doc)


@pytest.mark.parametrize(("change", "reason"), [
    (lambda p: p.pop("assignee"), "assignee None is missing or not a partner"),
    (lambda p: p.update(prohibition=[{"action": "distribute"}]), "a prohibition cannot be enforced"),
    (lambda p: p["permission"][0].pop("duty"), "a delete duty with elapsedTime lteq"),
    (lambda p: p["permission"][0].update(constraint=p["permission"][0]["constraint"][1:]), "a purpose constraint"),
    (lambda p: p["permission"][0].update(constraint=[c for c in p["permission"][0]["constraint"]
                                                     if c["leftOperand"] != "dateTime"]), "validity dates required"),
    (lambda p: p["permission"][0].update(action="distribute"), "permission action 'distribute' is not 'use'"),
    (lambda p: p["permission"][0]["duty"].append({"action": "anonymize"}), "duty 'anonymize' cannot be enforced"),
    (lambda p: p.update(target="urn:techne:asset:opera-lyon:web.searched"), "is not an event type the bus shares"),
])
def test_what_the_bus_cannot_enforce_is_refused(change: Any, reason: str) -> None:
    doc = policy()
    change(doc)
    assert reason in refusal(doc)


def test_the_protocol_s_own_example_agreement_is_refused_for_every_unenforceable_term() -> None:
    message = json.loads((DSP / "negotiation" / "example" / "contract-agreement-message-full.json").read_text())
    text = refusal(message["agreement"])
    assert "exactly one permission expected, found 7" in text
    assert "assigner 'http://example.com/Provider' is not a known venue" in text


def test_narrower_terms_are_kept_and_listed_as_lost() -> None:
    doc = policy()
    constraints = doc["permission"][0]["constraint"]
    constraints[0]["rightOperand"] = ["cross_venue_analytics", "https://purposes.example/profiling"]
    constraints[2]["rightOperand"] = "2028-12-31T06:00:00Z"  # a time of day: whole days only
    constraints[3]["rightOperand"].append("email")  # a raw identifier is never shared
    (imported,) = odrl.from_document(doc)
    assert [p.value for p in imported.agreement.purposes] == ["cross_venue_analytics"]
    assert imported.agreement.valid_until.isoformat() == "2028-12-30"
    assert "email" not in imported.agreement.allowed_fields
    lost = "\n".join(imported.lost)
    assert "purpose 'https://purposes.example/profiling' is not one of the bus's" in lost
    assert "narrowed to whole days (2028-12-30)" in lost
    assert "fields ['email'] cannot be shared" in lost


def test_policies_that_do_not_cover_every_venue_and_type_are_refused() -> None:
    graph = odrl.document([a for a in _FROZEN if a.id == "dsa-observatoire-2026"])["@graph"]
    assert "opera-lyon × ticket.order_placed missing" in refusal(graph[1:])


def test_a_foreign_policy_is_read_through_the_party_map() -> None:
    doc = policy()
    doc.pop("techne:agreement")
    doc.update({"@id": "urn:uuid:5a1c", "assigner": "https://venues.example/lyon",
                "assignee": "https://partners.example/obs", "target": "https://assets.example/orders"})
    parties = {"https://venues.example/lyon": "opera-lyon", "https://partners.example/obs": "observatoire",
               "https://assets.example/orders": "ticket.order_placed"}
    (imported,) = odrl.from_document(doc, parties)
    assert imported.agreement.id == "5a1c"
    assert (imported.agreement.provider_venues, imported.agreement.partner) == (["opera-lyon"], "observatoire")
    assert imported.agreement.event_types == ["ticket.order_placed"]


def test_the_prometheus_x_contract_becomes_an_agreement_and_lists_what_is_lost() -> None:
    imported = prometheus_x.from_contract(CONTRACT, PARTIES)
    a = imported.agreement
    assert a.id == "px-0d7e8c1a-4b6f-4f55-9c2e-8a1b3c5d7e90"
    assert (a.provider_venues, a.partner, [p.value for p in a.purposes]) == (["chaillot"], "reseau-danse",
                                                                             ["marketing"])
    assert a.event_types == ["ticket.order_placed"]
    assert (a.valid_from.isoformat(), a.valid_until.isoformat(), a.retention_days) == ("2026-09-01", "2027-08-31",
                                                                                        395)
    assert a.allowed_fields == []  # no field list in the contract: nothing beyond the envelope
    lost = "\n".join(imported.lost)
    assert "serviceofferings/66f2a5e01d4e3b0012a4c522' is not one of the bus's" in lost  # a purpose given as a URL
    assert "dance-dashboard' is not an event type the bus shares" in lost
    assert "no field list" in lost and "signatures are not carried" in lost


@pytest.mark.parametrize(("change", "reason"), [
    (lambda c: c.pop("dataConsumer"), "the contract has no dataConsumer: there is no partner to share with"),
    (lambda c: c.update(status="revoked"), "status 'revoked': only a signed contract can be enforced"),
    (lambda c: c["policy"][0].update(prohibition=[{"action": "use", "target": "x"}]), "a prohibition cannot"),
    (lambda c: c.update(serviceOfferings=[]), "a delete duty with elapsedTime lteq"),
    (lambda c: c.update(purpose=[{"purpose": "https://catalog.example/so/1"}]), "no purpose the bus knows"),
    (lambda c: c["policy"][0]["permission"][0]["constraint"].append(
        {"@type": "Constraint", "leftOperand": "count", "operator": "lteq", "rightOperand": "10"}),
     "unknown constraint 'count' 'lteq'"),
])
def test_a_contract_the_bus_cannot_enforce_is_refused(change: Any, reason: str) -> None:
    contract = copy.deepcopy(CONTRACT)
    change(contract)
    with pytest.raises(PolicyRefused) as caught:
        prometheus_x.from_contract(contract, PARTIES)
    assert reason in str(caught.value)


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_import_writes_yaml_the_bus_loads(tmp_path: Path) -> None:
    result = run("agreements", "import", "--from", "prometheus-x", str(FIXTURES / "prometheus-x-contract.json"),
                 "--party", f"{ORDERS}=ticket.order_placed", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("*.yaml")
    text = written.read_text(encoding="utf-8")
    assert "# Ce qui n'a pas pu être repris / what could not be kept:" in text and "no field list" in text
    (loaded,) = load_agreements(tmp_path, {"chaillot", "gemeaux"})
    assert loaded == prometheus_x.from_contract(CONTRACT, PARTIES).agreement
    assert yaml.safe_load(text)["partner"] == "reseau-danse"


def test_cli_odrl_import_of_an_export_round_trips(tmp_path: Path) -> None:
    exported = run("agreements", "export", "--format", "odrl", "--dir", str(FIXTURES / "agreements"))
    assert exported.exit_code == 0, exported.output
    source = tmp_path / "odrl.jsonld"
    source.write_text(exported.stdout, encoding="utf-8")
    out = tmp_path / "imported"
    assert run("agreements", "import", "--from", "odrl", str(source), "--dir", str(out)).exit_code == 0
    assert sorted(normal(a).items() for a in load_agreements(out)) == sorted(
        normal(a).items() for a in load_agreements(FIXTURES / "agreements"))


@pytest.mark.parametrize("bad", ["no consumer", "unknown constraint", "unknown venue", "existing id", "not json"])
def test_cli_refuses_bad_input_and_writes_nothing(tmp_path: Path, bad: str) -> None:
    directory = tmp_path / "agreements"
    directory.mkdir()
    source, kind = tmp_path / "in.json", "prometheus-x"
    contract = copy.deepcopy(CONTRACT)
    if bad == "no consumer":
        contract.pop("dataConsumer")
    elif bad == "unknown venue":
        contract["dataProvider"] = "https://catalog.example/participants/theatre-inconnu"
    elif bad == "existing id":
        (directory / "px-0d7e8c1a-4b6f-4f55-9c2e-8a1b3c5d7e90.yaml").write_text(
            (DEPLOY / "reseau-danse-marketing.yaml").read_text().replace("dsa-reseau-danse-2026",
                                                                         "px-0d7e8c1a-4b6f-4f55-9c2e-8a1b3c5d7e90"))
    source.write_text(json.dumps(contract), encoding="utf-8")
    if bad == "unknown constraint":
        doc = policy()
        doc["permission"][0]["constraint"].append({"leftOperand": "spatial", "operator": "eq", "rightOperand": "FR"})
        source.write_text(json.dumps(doc), encoding="utf-8")
        kind = "odrl"
    elif bad == "not json":
        source.write_text("{not json", encoding="utf-8")
    before = sorted(p.name for p in directory.iterdir())
    result = run("agreements", "import", "--from", kind, str(source), "--dir", str(directory),
                 "--party", f"{ORDERS}=ticket.order_placed")
    assert result.exit_code == 2
    assert "refus" in result.output or "error" in result.output
    expected = {"no consumer": "no dataConsumer", "unknown constraint": "unknown constraint 'spatial'",
                "unknown venue": "unknown venues ['theatre-inconnu']", "existing id": "already exists",
                "not json": "not readable JSON"}[bad]
    assert expected in result.output
    assert sorted(p.name for p in directory.iterdir()) == before


def test_a_json_ld_processor_s_rewriting_of_the_export_imports_to_the_same_agreements() -> None:
    """Expanded then compacted by pyld (``uid``/``type`` aliases, single values unwrapped, purposes as
    an unordered set): still the same agreements."""
    doc = odrl.document(AGREEMENTS[:3])
    compacted = jsonld.compact(expand(doc), doc["@context"], {"documentLoader": loader})
    assert "uid" in compacted["@graph"][0] and not isinstance(compacted["@graph"][0]["permission"], list)
    back = {i.agreement.id: i for i in odrl.from_document(compacted)}
    for agreement in AGREEMENTS[:3]:
        got, want = normal(back[agreement.id].agreement), normal(agreement)
        assert sorted(got.pop("purposes")) == sorted(want.pop("purposes"))  # RDF keeps no order in a set
        assert got == want and back[agreement.id].lost == ()


def test_keys_spelled_with_prefixes_or_full_iris_read_the_same() -> None:
    original = policy()
    spelled = {("odrl:" + k if k in ("assigner", "assignee", "target", "permission") else
                NS + k.removeprefix("techne:") if k.startswith("techne:") else k): v for k, v in original.items()}
    assert odrl.read_policy(spelled) == odrl.read_policy(original)


def test_the_dsp_catalogue_and_an_agreement_message_import_too() -> None:
    catalogue = dsp.catalog(AGREEMENTS[:3], participant_id="urn:techne:bus", endpoint="kafka://x:9092")
    back = {i.agreement.id: normal(i.agreement) for i in odrl.from_document(catalogue)}
    assert back == {a.id: normal(a) for a in AGREEMENTS[:3]}  # offers, their dataset as target
    policy_ = odrl.document(AGREEMENTS[:1])["@graph"]
    message = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "ContractAgreementMessage",
               "providerPid": "urn:uuid:p", "consumerPid": "urn:uuid:c", "agreement": policy_[0]}
    (single,) = odrl.from_document(message)  # one venue × type of the agreement: that pair only
    assert (single.agreement.id, single.agreement.provider_venues, single.agreement.event_types) == (
        AGREEMENTS[0].id, ["opera-lyon"], ["ticket.order_placed"])


def test_parties_and_target_may_sit_on_the_permission() -> None:
    doc = policy()
    rule = doc["permission"][0]
    for key in ("assigner", "assignee", "target"):
        rule[key] = doc.pop(key)
    assert odrl.read_policy(doc) == odrl.read_policy(policy())
