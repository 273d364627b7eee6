"""Offline validation of the data-space exports, from the standard files in ``../shared/dataspace/``.

The W3C ODRL context, the Dataspace Protocol contexts and JSON Schemas are read from there (never
copied into the project, never fetched): :func:`expand` runs pyld with a document loader that
serves only those files and our profile's context; :func:`schema_validator` resolves the
protocol's ``https://w3id.org/dspace/2025/1/`` ids through a local ``referencing`` registry;
:func:`shacl` validates the RDF of a document against our profile's shapes with pyshacl.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pyshacl
import rdflib
from pyld import jsonld
from referencing import Registry, Resource

from schemas.dataspace.profile import CONTEXT_URL, DSP_CONTEXT_URL, HERE, ODRL_CONTEXT_URL, SHAPES

SHARED = Path(os.environ.get("TECHNE_DATASPACE_STANDARDS",
                             Path(__file__).resolve().parents[1].parent / "shared" / "dataspace"))
if not (SHARED / "odrl.jsonld").is_file():
    raise FileNotFoundError(f"the data-space standard files are expected in {SHARED} (../shared/dataspace next to "
                            "the project, or TECHNE_DATASPACE_STANDARDS): ODRL and DSP contexts, DSP JSON Schemas")
DSP = SHARED / "dsp"
DOCUMENTS = {
    ODRL_CONTEXT_URL: SHARED / "odrl.jsonld",
    DSP_CONTEXT_URL: DSP / "context" / "dspace.jsonld",
    "https://w3id.org/dspace/2025/1/odrl-profile.jsonld": DSP / "context" / "odrl.jsonld",
    CONTEXT_URL: HERE / "profile-context.jsonld",
}


def loader(url: str, options: Any = None) -> dict[str, Any]:
    """pyld document loader: the local copies only; any other URL is an error (no network)."""
    path = DOCUMENTS.get(url)
    if path is None:
        raise jsonld.JsonLdError(f"offline: no local copy of {url}", "loading document failed",
                                 code="loading document failed")
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": json.loads(path.read_text(encoding="utf-8"))}


def expand(doc: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = jsonld.expand(doc, {"documentLoader": loader})
    return result


def to_graph(doc: Any) -> rdflib.Graph:
    nquads = jsonld.to_rdf(doc, {"documentLoader": loader, "format": "application/n-quads"})
    graph = rdflib.Graph()
    graph.parse(data=nquads, format="nt")  # default graph only: N-Triples lines
    return graph


def shacl(doc: Any) -> tuple[bool, str]:
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, _, text = pyshacl.validate(to_graph(doc), shacl_graph=shapes, inference="none")
    return bool(conforms), str(text)


def registry() -> Registry:
    resources = []
    for path in sorted(DSP.rglob("*-schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def schema_validator(relative: str) -> jsonschema.protocols.Validator:
    """Validator of ``dsp/<relative>`` (e.g. ``catalog/catalog-schema.json``), offline."""
    schema = json.loads((DSP / relative).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry())
