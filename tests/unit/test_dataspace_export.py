"""Agreements exported as ODRL 2.2 and as a Dataspace Protocol catalogue: golden files, and offline
validation with the standard files of ``../shared/dataspace/`` (JSON-LD expansion with pyld, the
protocol's JSON Schemas through a local registry, our profile's SHACL shapes with pyshacl)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rdflib
from pyld import jsonld

from schemas.agreements import load_agreements
from schemas.dataspace import dsp, odrl
from schemas.dataspace.profile import NS, ODRL_NS, PROFILE
from tests import dataspace_helpers as h

FIXTURES = Path(__file__).parents[1] / "fixtures" / "dataspace"
AGREEMENTS = load_agreements(FIXTURES / "agreements")
ODRL = rdflib.Namespace(ODRL_NS)


def exports() -> dict[str, Any]:
    return {"odrl.jsonld": odrl.document(AGREEMENTS),
            "dsp-catalog.jsonld": dsp.catalog(AGREEMENTS, participant_id="urn:techne:bus",
                                              endpoint="kafka://bus.techne.example:9092")}


@pytest.mark.parametrize("name", ["odrl.jsonld", "dsp-catalog.jsonld"])
def test_exports_match_their_golden_files(name: str) -> None:
    produced = json.dumps(exports()[name], ensure_ascii=False, indent=2) + "\n"
    golden = FIXTURES / "golden" / name
    if os.environ.get("TECHNE_UPDATE_GOLDEN"):
        golden.write_text(produced, encoding="utf-8")
    assert produced == golden.read_text(encoding="utf-8"), f"{name} changed: review, then TECHNE_UPDATE_GOLDEN=1"


def test_one_policy_per_venue_and_event_type_with_the_agreement_terms() -> None:
    graph = odrl.document(AGREEMENTS)["@graph"]
    assert len(graph) == sum(len(a.provider_venues) * len(a.event_types) for a in AGREEMENTS) == 14
    wanted = "urn:techne:agreement:dsa-recherche-publics:mixt:campaign.email_clicked"
    (click,) = [p for p in graph if p["@id"] == wanted]
    assert click["assigner"] == "urn:techne:venue:mixt" and click["assignee"] == "urn:techne:partner:labo-publics"
    assert click["target"] == "urn:techne:asset:mixt:campaign.email_clicked"
    assert click["techne:pseudonymDomain"] == "reseau-recherche" and click["techne:minCellSize"] == 20
    purpose, start, end, fields = click["permission"][0]["constraint"]
    assert purpose["rightOperand"] == ["research", "cross_venue_analytics"]  # the agreement's order
    assert (start["rightOperand"]["@value"], end["rightOperand"]["@value"]) == ("2026-03-01", "2027-02-28")
    assert fields == {"leftOperand": "techne:field", "operator": "isPartOf", "rightOperand": ["campaign_id"]}
    (duty,) = click["permission"][0]["duty"]
    assert duty["constraint"][0]["rightOperand"] == {"@value": "P180D", "@type": "xsd:duration"}


def test_every_policy_validates_against_the_protocol_contract_schema() -> None:
    validator = h.schema_validator("negotiation/contract-schema.json")
    graph = odrl.document(AGREEMENTS)["@graph"]
    for policy in graph:
        validator.validate(policy)
    broken = copy.deepcopy(graph[0])
    del broken["assignee"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_the_catalogue_and_each_dataset_validate_against_the_protocol_schemas() -> None:
    catalogue = exports()["dsp-catalog.jsonld"]
    h.schema_validator("catalog/catalog-schema.json").validate(catalogue)
    datasets = h.schema_validator("catalog/dataset-schema.json")
    for dataset in catalogue["dataset"]:
        datasets.validate({"@context": catalogue["@context"], **dataset})
        assert all("target" not in offer for offer in dataset["hasPolicy"])  # an offer's target is its dataset
    assert {d["@id"] for d in catalogue["dataset"]} == {
        f"urn:techne:asset:{v}:{t}" for a in AGREEMENTS for v in a.provider_venues for t in a.event_types}
    chaillot_orders = next(d for d in catalogue["dataset"] if d["@id"].endswith("chaillot:ticket.order_placed"))
    assert sorted(o["techne:agreement"] for o in chaillot_orders["hasPolicy"]) == [
        "dsa-observatoire-2026", "dsa-reseau-danse-2026"]
    with pytest.raises(jsonschema.ValidationError):  # an offer may not carry a target
        datasets.validate({"@context": catalogue["@context"], **chaillot_orders,
                           "hasPolicy": [{**chaillot_orders["hasPolicy"][0], "target": "urn:x"}]})


def test_json_ld_expands_offline_to_odrl_and_profile_iris() -> None:
    expanded = h.expand(odrl.document(AGREEMENTS))
    first = expanded[0]
    assert first["@type"] == [ODRL_NS + "Agreement"]
    assert first[ODRL_NS + "profile"] == [{"@id": PROFILE}]
    constraints = first[ODRL_NS + "permission"][0][ODRL_NS + "constraint"]
    assert [c[ODRL_NS + "leftOperand"][0]["@id"] for c in constraints] == [
        ODRL_NS + "purpose", ODRL_NS + "dateTime", ODRL_NS + "dateTime", NS + "field"]
    assert first[NS + "agreement"] == [{"@value": "dsa-observatoire-2026"}]
    with pytest.raises(jsonld.JsonLdError):  # no network: an unknown context is an error, not a fetch
        h.expand({"@context": "https://example.org/elsewhere.jsonld", "@id": "urn:x"})


def test_exports_conform_to_the_profile_shapes() -> None:
    for name, doc in exports().items():
        conforms, report = h.shacl(doc)
        assert conforms, f"{name}: {report}"
        graph = h.to_graph(doc)
        policies = len(list(graph.subjects(rdflib.RDF.type, ODRL.Agreement))) + len(
            list(graph.subjects(rdflib.RDF.type, ODRL.Offer)))
        assert policies == 14, name  # the shapes really had every policy to check


def _mutate(change: str) -> dict[str, Any]:
    doc = copy.deepcopy(odrl.document(AGREEMENTS[:1]))
    permission = doc["@graph"][0]["permission"][0]
    if change == "no purpose":
        permission["constraint"] = permission["constraint"][1:]
    elif change == "no delete duty":
        del permission["duty"]
    elif change == "retention without duration type":
        permission["duty"][0]["constraint"][0]["rightOperand"] = "730 days"
    elif change == "no end date":
        permission["constraint"] = [c for c in permission["constraint"] if c["operator"] != "lteq"]
    elif change == "unknown constraint":
        permission["constraint"].append({"leftOperand": "spatial", "operator": "eq", "rightOperand": "FR"})
    elif change == "unknown purpose":
        permission["constraint"][0]["rightOperand"] = ["profiling"]
    return doc


@pytest.mark.parametrize("change", ["no purpose", "no delete duty", "retention without duration type",
                                    "no end date", "unknown constraint", "unknown purpose"])
def test_the_shapes_reject_a_policy_outside_the_profile(change: str) -> None:
    conforms, report = h.shacl(_mutate(change))
    assert not conforms, change
    assert "Constraint Violation" in report


def test_a_bus_without_agreements_has_a_valid_empty_catalogue() -> None:
    empty = dsp.catalog([], participant_id="urn:techne:bus", endpoint="kafka://x:9092")
    h.schema_validator("catalog/catalog-schema.json").validate(empty)
    assert "dataset" not in empty
