"""Generate the pydantic models of the catalogue from the ``.avsc`` files.

Two checked-in modules come out of :func:`render`:

* ``schemas/generated/records.py``: one model per Avro record of the latest version of every
  schema (``TicketOrderPlaced``, ``Subject``, ...), one ``Literal`` alias per enum. Names, types,
  optionality, defaults, constraints (``techne.constraints``) and privacy tags follow the schema.
* ``schemas/generated/incoming.py``: the JSON venues post, one ``<Record>In`` model per schema
  that lists ``techne.event_types``: the record's own fields, plus ``type``, an optional
  ``event_id``, ``occurred_at``, ``source_system`` and a ``customer`` block (the bus adds
  ``received_at``, ``venue_id`` and ``schema_version``).

``techne schemas models`` rewrites them; ``--check`` (and the test suite) fails when they are
stale. Pure: returns source text, writes only in :func:`write`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from schemas.codec import CATALOGUE, Catalogue
from schemas.privacy import TAG_KEY

OUT_DIR = Path(__file__).parent / "generated"
ENVELOPE = ("event_id", "event_type", "schema_version", "occurred_at", "received_at", "venue_id", "source_system",
            "subject")
CUSTOMER_CLASSES = {"identified": "Customer", "visitor": "VisitorCustomer", "optional": "OptionalCustomer"}
_PRIMITIVES = {"string": "str", "boolean": "bool", "float": "float", "double": "float", "bytes": "bytes",
               "null": "None", "int": "Int32", "long": "Int64"}
_LOGICAL = {"uuid": "uuid.UUID", "timestamp-micros": "AwareDatetime", "timestamp-millis": "AwareDatetime",
            "date": "datetime.date"}


class _Renderer:
    def __init__(self) -> None:
        self.enums: dict[str, list[str]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []

    def short(self, name: str) -> str:
        return name.rsplit(".", 1)[-1]

    def collect(self, schema: Any) -> None:
        """Register named types depth first, so that dependencies come before their users."""
        if isinstance(schema, list):
            for s in schema:
                self.collect(s)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            short = self.short(str(schema.get("name", "")))
            if kind == "enum":
                if self.enums.setdefault(short, schema["symbols"]) != schema["symbols"]:
                    raise ValueError(f"enum {short} has different symbols in two schemas")
            elif kind == "record":
                for f in schema["fields"]:
                    self.collect(f["type"])
                if short in self.records and _strip(self.records[short]) != _strip(schema):
                    raise ValueError(f"record {short} has different definitions in two schemas")
                if short not in self.records:
                    self.records[short] = schema
                    self.order.append(short)
            elif kind == "array":
                self.collect(schema["items"])
            elif kind == "map":
                self.collect(schema["values"])
            elif isinstance(kind, (dict, list)):
                self.collect(kind)

    def annotation(self, t: Any, constraints: dict[str, Any] | None = None) -> str:
        if isinstance(t, list):
            inner = [self.annotation(x, constraints) for x in t if x != "null"]
            return " | ".join(inner + (["None"] if "null" in t else []))
        if isinstance(t, dict):
            kind = t.get("type")
            if "logicalType" in t and t["logicalType"] in _LOGICAL:
                return self._constrained(_LOGICAL[t["logicalType"]], constraints)
            if kind in ("enum", "record"):
                return self.short(t["name"])
            if kind == "array":
                return f"list[{self.annotation(t['items'])}]"
            if kind == "map":
                return f"dict[str, {self.annotation(t['values'])}]"
            return self.annotation(kind, constraints)
        if t in _PRIMITIVES:
            return self._constrained(_PRIMITIVES[t], constraints)
        return self.short(str(t))

    @staticmethod
    def _constrained(base: str, constraints: dict[str, Any] | None) -> str:
        if not constraints:
            return base
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(constraints.items()))
        return f"Annotated[{base}, Field({args})]"

    def field_line(self, f: dict[str, Any]) -> str:
        ann = self.annotation(f["type"], f.get("techne.constraints"))
        args: list[str] = []
        if "default" in f:
            default = f["default"]
            if default == []:
                args.append("default_factory=list")
            elif default == {}:
                args.append("default_factory=dict")
            else:
                args.append(repr(default))
        if f.get("doc"):
            args.append(f"description={f['doc']!r}")
        args.append(f"json_schema_extra={{{TAG_KEY!r}: {f.get(TAG_KEY)!r}}}")
        line = f"    {f['name']}: {ann} = Field({', '.join(args)})"
        if len(line) <= 120:
            return line
        head = f"    {f['name']}: {ann} = Field("
        return "\n".join([head if len(head) <= 120 else head + "  # noqa: E501",
                          *(f"        {a}," if len(a) <= 110 else f"        {a},  # noqa: E501" for a in args),
                          "    )"])

    def record_class(self, name: str, schema: dict[str, Any]) -> list[str]:
        lines = ["", "", f"class {name}(_Record):", f"    {_doc(schema)}", ""]
        lines += [self.field_line(f) for f in schema["fields"]]
        return lines

    def incoming_class(self, schema: dict[str, Any]) -> list[str]:
        name = self.short(schema["name"])
        literal = ", ".join(repr(t) for t in schema["techne.event_types"])
        lines = ["", "", f"class {name}In(EventIn):", f"    {_doc(schema)}", "",
                 f"    type: Literal[{literal}]"]
        if any(f["name"] == "subject" for f in schema["fields"]):
            policy = schema.get("techne.customer", "identified")
            cls = CUSTOMER_CLASSES[policy]
            lines.append(f"    customer: {cls}" + (f" = Field(default_factory={cls})" if policy == "optional" else ""))
        lines += [self.field_line(f) for f in schema["fields"] if f["name"] not in ENVELOPE]
        return lines


def _strip(schema: dict[str, Any]) -> Any:
    return [(f["name"], repr(f["type"]), repr(f.get("default"))) for f in schema["fields"]]


def _doc(schema: dict[str, Any]) -> str:
    text = str(schema.get("doc", "")).replace('"""', "'''").replace("\\", "\\\\")
    return f'"""{text}"""' if len(text) <= 110 else f'"""{text[:100].rsplit(" ", 1)[0]} ..."""'


_HEADER = '''"""{title}

GENERATED by `techne schemas models` from schemas/avro: do not edit.

{what}
"""

from __future__ import annotations
'''


def render(catalogue: Catalogue = CATALOGUE) -> dict[str, str]:
    """``{module file name: source}`` of the generated modules for ``catalogue``."""
    r = _Renderer()
    latest = [catalogue.entry(n).raw for n in catalogue.names()]
    for raw in latest:
        r.collect(raw)
    rec_body = ["Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]",
                "Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]", ""]
    for name, symbols in sorted(r.enums.items()):
        line = f"{name} = Literal[{', '.join(repr(s) for s in symbols)}]"
        rec_body.append(line if len(line) <= 120 else line + "  # noqa: E501")
    rec_body += ["", "", "class _Record(BaseModel):", '    model_config = ConfigDict(extra="forbid", frozen=True)']
    for name in r.order:
        rec_body += r.record_class(name, r.records[name])
    inc_body = ["", "", "class EventIn(Posted):",
                '    """What every event a venue posts carries; the bus owns received_at and venue_id."""', "",
                '    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)', "",
                "    type: str",
                "    event_id: uuid.UUID | None = None",
                "    occurred_at: AwareDatetime",
                '    source_system: Annotated[str, Field(min_length=1, max_length=64)] = "unknown"']
    event_schemas = [raw for raw in latest if raw.get("techne.event_types")]
    for raw in event_schemas:
        inc_body += r.incoming_class(raw)
    inc_body += ["", "", "MODELS: dict[str, type[EventIn]] = {"]
    inc_body += [f"    {catalogue_name(raw)!r}: {r.short(raw['name'])}In," for raw in event_schemas]
    inc_body += ["}", '"""Schema full name -> its incoming model."""']
    rec_text, inc_text = "\n".join(rec_body), "\n".join(inc_body)
    records = [_HEADER.format(title="Pydantic models of the catalogue's Avro records (latest versions).",
                              what="Each model validates a decoded record of its schema; field metadata carries\n"
                                   "the privacy tag (``techne.privacy``). Regenerate after changing an .avsc."),
               *_stdlib(rec_text), "from pydantic import AwareDatetime, BaseModel, ConfigDict, Field", "", rec_text]
    shared = sorted(n for n in {*r.enums, "Int32", "Int64"} if re.search(rf"\b{n}\b", inc_text))
    customers = sorted(c for c in CUSTOMER_CLASSES.values() if re.search(rf"\b{c}\b", inc_text))
    incoming = [_HEADER.format(title="Pydantic models of the JSON events venues post (one per event schema).",
                               what="``<Record>In`` = the record's own fields + ``type``, ``event_id`` (optional),\n"
                                    "``occurred_at``, ``source_system`` and ``customer``; the bus adds the rest."),
                *_stdlib(inc_text), "from pydantic import AwareDatetime, ConfigDict, Field", "",
                f"from schemas.customer import {', '.join(customers)}",
                "from schemas.generated.records import (", *(f"    {n}," for n in shared), ")",
                "from schemas.posted import Posted", inc_text]
    return {"records.py": "\n".join(records) + "\n", "incoming.py": "\n".join(incoming) + "\n"}


def _stdlib(body: str) -> list[str]:
    lines = [f"import {m}" for m in ("datetime", "uuid") if f"{m}." in body]
    typing = [n for n in ("Annotated", "Literal") if f"{n}[" in body]
    return [*lines, f"from typing import {', '.join(typing)}", ""]


def catalogue_name(raw: dict[str, Any]) -> str:
    return f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")


def write(out_dir: Path = OUT_DIR, catalogue: Catalogue = CATALOGUE) -> list[Path]:
    """Rewrite the generated modules; return the files that changed."""
    changed = []
    out_dir.mkdir(parents=True, exist_ok=True)
    init = out_dir / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated pydantic models of the catalogue (see schemas/gen_models.py)."""\n')
    for name, source in render(catalogue).items():
        path = out_dir / name
        if not path.exists() or path.read_text() != source:
            path.write_text(source)
            changed.append(path)
    return changed


def stale(out_dir: Path = OUT_DIR, catalogue: Catalogue = CATALOGUE) -> list[str]:
    """Generated modules whose checked-in text differs from what the schemas generate."""
    return [name for name, source in render(catalogue).items()
            if not (out_dir / name).exists() or (out_dir / name).read_text() != source]
