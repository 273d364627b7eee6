"""``techne bench codec``: our codec vs bare fastavro on realistic ticket orders.

Both sides get the same records (ticket orders built from the catalogue's examples, with a
full subject block, varied ids, amounts and dates) and the same parsed schema. The baseline is
``fastavro.schemaless_writer`` / ``schemaless_reader`` on a ``BytesIO`` with no framing and no
error handling; ours adds the Confluent header, the typed errors, the trailing-bytes check and
id lookup. Each side runs ``rounds`` times, interleaved; medians are reported (the ratio is the
median of the per-round ratios). With
``--json`` the last line printed is one JSON object (``ratio_vs_fastavro_encode`` /
``ratio_vs_fastavro_decode`` = ours / baseline, higher is better). The same records are also
encoded sealed (direct identifiers encrypted per subject, schemas/sealing.py) and decoded with
their fields opened: ``seal_us_per_event`` / ``open_us_per_event`` and ``ratio_vs_unsealed_*``
give what crypto-shredding costs per event next to the plain codec.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from io import BytesIO
from typing import Any

import fastavro

from core.datakeys import DataKey
from schemas.codec import CATALOGUE, HEADER_SIZE
from schemas.examples import example_record
from schemas.models import TICKET_ORDER
from schemas.sealing import SEALER


def ticket_orders(n: int) -> list[dict[str, Any]]:
    """``n`` distinct realistic TicketOrderPlaced records."""
    base = example_record(CATALOGUE.entry(TICKET_ORDER).raw)
    out = []
    for i in range(n):
        record = dict(base)
        record["event_id"] = str(uuid.UUID(int=i + 1))
        record["order_id"] = f"CMD-2026-{i:06d}"
        record["occurred_at"] = base["occurred_at"] + timedelta(seconds=i)
        record["quantity"] = 1 + i % 6
        record["amount_minor"] = 4500 * record["quantity"]
        record["subject"] = {**base["subject"], "email": f"spectateur{i}@exemple.fr", "customer_id": f"C-{i:07d}"}
        out.append(record)
    return out


def _rate(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    fn()
    return n / (time.perf_counter() - started)


def run(events: int = 20_000, rounds: int = 5) -> dict[str, Any]:
    """Measure and return the figures (events/s are medians over ``rounds``)."""
    records = ticket_orders(events)
    parsed = CATALOGUE.entry(TICKET_ORDER).parsed
    encode, decode = CATALOGUE.encode, CATALOGUE.decode
    writer, reader = fastavro.schemaless_writer, fastavro.schemaless_reader
    framed = [encode(TICKET_ORDER, r) for r in records]
    bodies = [f[HEADER_SIZE:] for f in framed]

    def ours_encode() -> None:
        for r in records:
            encode(TICKET_ORDER, r)

    def bare_encode() -> None:
        for r in records:
            buf = BytesIO()
            writer(buf, parsed, r)
            buf.getvalue()

    def ours_decode() -> None:
        for f in framed:
            decode(f)

    # Sealed (crypto-shredding, schemas/sealing.py): what every producer and the worker do on top
    # of the codec. Each record's direct identifiers encrypted with its subject's data key (AES-GCM)
    # before encoding; decoding opens them. The copy of the record seal() works on is included.
    subject_keys = [DataKey.generate(f"subject-{i % 1000}") for i in range(1000)]
    by_kid = {k.kid: k.aead for k in subject_keys}

    def sealed_encode() -> list[bytes]:
        out = []
        for i, r in enumerate(records):
            r = {**r, "subject": dict(r["subject"])}
            SEALER.seal(TICKET_ORDER, r, subject_keys[i % 1000])
            out.append(encode(TICKET_ORDER, r))
        return out

    sealed = sealed_encode()

    def sealed_decode() -> None:
        for f in sealed:
            name, record = decode(f)
            SEALER.open(name, record, by_kid.get)

    def bare_decode() -> None:
        for b in bodies:
            reader(BytesIO(b), parsed, None)

    samples: dict[str, list[float]] = {"encode": [], "fastavro_encode": [], "decode": [], "fastavro_decode": [],
                                       "sealed_encode": [], "sealed_decode": []}
    for warm_up in (ours_encode, bare_encode, ours_decode, bare_decode, sealed_encode, sealed_decode):
        warm_up()
    for _ in range(rounds):
        samples["fastavro_encode"].append(_rate(bare_encode, events))
        samples["encode"].append(_rate(ours_encode, events))
        samples["sealed_encode"].append(_rate(sealed_encode, events))
        samples["fastavro_decode"].append(_rate(bare_decode, events))
        samples["decode"].append(_rate(ours_decode, events))
        samples["sealed_decode"].append(_rate(sealed_decode, events))
    med = {k: statistics.median(v) for k, v in samples.items()}
    # Ratios are medians of per-round ratios: both sides of a round ran back to back, so load
    # from other processes on a shared machine cancels out better than in a ratio of medians.
    ratio = {op: statistics.median(o / b for o, b in zip(samples[op], samples[f"fastavro_{op}"], strict=True))
             for op in ("encode", "decode")}
    return {
        "bench": "codec", "schema": TICKET_ORDER, "events": events, "rounds": rounds,
        "bytes_per_event": round(sum(map(len, framed)) / events, 1),
        "encode_events_per_s": round(med["encode"]), "decode_events_per_s": round(med["decode"]),
        "fastavro_encode_events_per_s": round(med["fastavro_encode"]),
        "fastavro_decode_events_per_s": round(med["fastavro_decode"]),
        "ratio_vs_fastavro_encode": round(ratio["encode"], 3),
        "ratio_vs_fastavro_decode": round(ratio["decode"], 3),
        "sealed_encode_events_per_s": round(med["sealed_encode"]),
        "sealed_decode_events_per_s": round(med["sealed_decode"]),
        "seal_us_per_event": round(1e6 / med["sealed_encode"] - 1e6 / med["encode"], 2),
        "open_us_per_event": round(1e6 / med["sealed_decode"] - 1e6 / med["decode"], 2),
        "ratio_vs_unsealed_encode": round(statistics.median(
            s / o for s, o in zip(samples["sealed_encode"], samples["encode"], strict=True)), 3),
        "ratio_vs_unsealed_decode": round(statistics.median(
            s / o for s, o in zip(samples["sealed_decode"], samples["decode"], strict=True)), 3),
    }


def main(events: int = 20_000, rounds: int = 5, as_json: bool = False) -> dict[str, Any]:
    """Run, print a table (and the JSON line with ``as_json``), return the figures."""
    figures = run(events, rounds)
    print(f"codec benchmark: {events} ticket orders ({figures['bytes_per_event']} bytes framed), "
          f"median of {rounds} rounds")
    print(f"{'':10} {'techne codec':>14} {'bare fastavro':>14} {'ratio':>7}")
    for op in ("encode", "decode"):
        print(f"{op:10} {figures[f'{op}_events_per_s']:>12,}/s {figures[f'fastavro_{op}_events_per_s']:>12,}/s "
              f"{figures[f'ratio_vs_fastavro_{op}']:>7.3f}")
    for op in ("encode", "decode"):
        print(f"{'sealed ' + op:10} {figures[f'sealed_{op}_events_per_s']:>12,}/s {'(unsealed)':>14} "
              f"{figures[f'ratio_vs_unsealed_{op}']:>7.3f}")
    print(f"sealing costs {figures['seal_us_per_event']} µs per event to encode, "
          f"{figures['open_us_per_event']} µs to decode")
    if as_json:
        print(json.dumps(figures))
    return figures
