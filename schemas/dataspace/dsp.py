"""The Dataspace Protocol (2025-1) catalogue of what the bus shares.

One ``Dataset`` per provider venue and event type that an agreement covers (``@id`` the asset
``urn:techne:asset:<venue>:<event type>``), whose ``hasPolicy`` lists one ODRL ``Offer`` per
agreement covering it (the agreement's policy without a target: the dataset is the target), and
one ``Distribution``: the partner's Kafka topics in Avro (Confluent wire format), served by the
bus's broker. The catalogue validates against the protocol's ``catalog-schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.agreements import Agreement
from schemas.dataspace.odrl import to_policies
from schemas.dataspace.profile import CONTEXT_URL, DSP_CONTEXT_URL, ODRL_CONTEXT_URL, asset_iri

CONTEXT = [ODRL_CONTEXT_URL, DSP_CONTEXT_URL, CONTEXT_URL]
"""ODRL's first (its terms: ``purpose``, ``dateTime``…), then the protocol's (protected), then ours."""
FORMAT = "Kafka-Avro-PULL"
"""Records on ``partner.<partner>.<stream>`` topics, Avro in the Confluent framing, read by the partner."""


def catalog(agreements: Iterable[Agreement], *, participant_id: str, endpoint: str) -> dict[str, Any]:
    """The catalogue of ``participant_id`` (the bus operator) whose service answers at ``endpoint``."""
    service = {"@id": "urn:techne:service:kafka", "@type": "DataService", "endpointURL": endpoint}
    offers: dict[str, list[dict[str, Any]]] = {}
    for agreement in agreements:
        for offer in to_policies(agreement, kind="Offer"):
            venue, event_type = offer["@id"].split(":")[-2:]
            offers.setdefault(asset_iri(venue, event_type), []).append(offer)
    datasets = [{"@id": asset, "@type": "Dataset", "hasPolicy": policies,
                 "distribution": [{"@type": "Distribution", "format": FORMAT, "accessService": service["@id"]}]}
                for asset, policies in sorted(offers.items())]
    out = {"@context": CONTEXT, "@id": "urn:techne:catalog", "@type": "Catalog", "participantId": participant_id,
           "service": [service], "dataset": datasets}
    if not datasets:  # the protocol wants at least one dataset when the key is there
        del out["dataset"]
    return out
