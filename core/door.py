"""The one parsing door of untrusted input: every JSON body, NDJSON line, query string and form
body an HTTP route reads (the gateway's, the schema registry API's) goes through here, under
explicit limits (:class:`Limits`).

Contract: :func:`parse_json`, :func:`parse_ndjson` and :func:`parse_params` either return the
parsed value or raise :class:`Refused`, a 4xx carrying a stable error code and the limit it
names (``limit``, ``max``). Nothing else escapes: no ``RecursionError`` from deep nesting, no
``ValueError`` from a huge integer, no ``UnicodeEncodeError`` later from a lone surrogate.

What is refused, and why:

* ``malformed_json`` (400): not JSON, or not UTF-8 (a UTF-16/32 body or a BOM is named as such);
* ``too_deep`` (400): arrays/objects nested deeper than ``depth`` (counted before parsing, on
  the bytes, so the recursive parser never sees it);
* ``number_too_long`` (400): a number literal longer than ``number_chars``;
  ``non_finite_number`` (400): ``NaN``, ``Infinity``, or a float that overflows (``1e999``);
* ``string_too_long`` (400): a string or key longer than ``string_chars`` characters;
* ``invalid_text`` (400): a string or key holding a lone UTF-16 surrogate (``"\\ud800"``),
  which no UTF-8 encoder downstream could write;
* ``duplicate_key`` (400): an object naming a key twice (parsers disagree on which one wins);
* ``too_many_keys`` (400) / ``too_many_items`` (413): an object or array over ``keys`` /
  ``items`` entries (a batch has its own, smaller, ``max_batch_events``);
* ``too_many_params`` (400): a query string or form body with more than ``params`` fields,
  ``param_too_long`` (400): a field name or value over ``string_chars``.

The whole body is capped before any of this (413 ``body_too_large``, producers/gateway/http.py);
the gateway's header sizes and counts are capped by its server (producers/gateway/server.py).
Uses the standard library's C parser with its hooks; the depth pre-scan is C-speed (regex and
``bytes.translate``), so a 1 MiB body is checked in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any
from urllib.parse import parse_qsl

from core import errors


@dataclass(frozen=True)
class Limits:
    """Bounds of one parsed body (the total size is ``Settings.max_body_bytes``)."""

    depth: int = 32
    number_chars: int = 40
    string_chars: int = 65_536
    keys: int = 1_000
    items: int = 10_000
    params: int = 200


LIMITS = Limits()


class Refused(errors.Refused):
    """A body the door will not parse: HTTP ``status``, error code, a detail naming the limit
    (a :class:`core.errors.Refused`: whoever handles the tree's refusals handles it too)."""

    def __init__(self, status: int, error: str, detail: str, *, limit: str | None = None,
                 maximum: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.limit, self.maximum = status, error, detail, limit, maximum

    @property
    def extra(self) -> dict[str, Any]:
        """The fields a problem answer carries besides ``error`` and ``detail``."""
        return {} if self.limit is None else {"limit": self.limit, "max": self.maximum}


# a JSON string token (possessive: no backtracking on hostile input), and everything but brackets
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEP = [0] * 256
for _c in b"[{":
    _STEP[_c] = 1
for _c in b"]}":
    _STEP[_c] = -1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_depth(body: bytes, limits: Limits) -> None:
    if body.count(b"[") + body.count(b"{") <= limits.depth:
        return
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if brackets and max(accumulate(map(_STEP.__getitem__, brackets))) > limits.depth:
        raise Refused(400, "too_deep", f"arrays and objects nest deeper than {limits.depth} levels",
                      limit="depth", maximum=limits.depth)


def _too_long_number(limits: Limits) -> Refused:
    return Refused(400, "number_too_long", f"a number is longer than {limits.number_chars} characters",
                   limit="number_chars", maximum=limits.number_chars)


def _too_long_string(limits: Limits) -> Refused:
    return Refused(400, "string_too_long", f"a string is longer than {limits.string_chars} characters",
                   limit="string_chars", maximum=limits.string_chars)


def _invalid_text() -> Refused:
    return Refused(400, "invalid_text", "a string holds a lone UTF-16 surrogate (not Unicode text)")


class _Decoder:
    """``json.loads`` hooks enforcing the limits as the C parser goes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def parse_int(self, text: str) -> int:
        if len(text) > self.limits.number_chars:
            raise _too_long_number(self.limits)
        return int(text)

    def parse_float(self, text: str) -> float:
        if len(text) > self.limits.number_chars:
            raise _too_long_number(self.limits)
        value = float(text)
        if not math.isfinite(value):
            raise Refused(400, "non_finite_number", "a number overflows a 64-bit float")
        return value

    def parse_constant(self, name: str) -> float:
        raise Refused(400, "non_finite_number", f"{name} is not a JSON number")

    def object_pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > self.limits.keys:
            raise Refused(400, "too_many_keys", f"an object has more than {self.limits.keys} keys",
                          limit="keys", maximum=self.limits.keys)
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise Refused(400, "duplicate_key", "an object names the same key twice")
        return obj

    def loads(self, text: str) -> Any:
        return json.loads(text, parse_int=self.parse_int, parse_float=self.parse_float,
                          parse_constant=self.parse_constant, object_pairs_hook=self.object_pairs)


def _check_values(value: Any, limits: Limits, surrogates: bool) -> None:
    """Strings (values and keys) and array lengths of a parsed document, iteratively."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.string_chars:
                raise _too_long_string(limits)
            if surrogates and _SURROGATE.search(node):
                raise _invalid_text()
        elif isinstance(node, list):
            if len(node) > limits.items:
                raise Refused(413, "too_many_items", f"an array has more than {limits.items} items",
                              limit="items", maximum=limits.items)
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())


def _other_encoding(head: bytes) -> str | None:
    """What a body that starts with ``head`` is written in, when it is UTF-8 with a BOM or another
    Unicode encoding (RFC 4627's detection: JSON text starts with two ASCII characters)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "UTF-8 with a byte order mark (BOM)"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) or (len(head) == 4 and head.count(0) == 3):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 2 and head[:2].count(0) == 1):
        return "UTF-16"
    return None


def parse_json(body: bytes, limits: Limits = LIMITS) -> Any:
    """The JSON document in ``body`` (UTF-8), or :class:`Refused` naming what is wrong."""
    if (written_in := _other_encoding(body[:4])) is not None:
        raise Refused(400, "malformed_json", f"the body is {written_in}: send UTF-8 without a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, "malformed_json", f"byte {exc.start}: not UTF-8") from None
    _check_depth(body, limits)
    try:
        value = _Decoder(limits).loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(400, "malformed_json", f"line {exc.lineno} column {exc.colno}: not valid JSON") from None
    _check_values(value, limits, surrogates=_SURROGATE_ESCAPE.search(body) is not None)
    return value


def parse_ndjson(body: bytes, limits: Limits = LIMITS) -> list[Any | Refused]:
    """One item per non-blank line: its JSON value, or the :class:`Refused` of that line."""
    items: list[Any | Refused] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            items.append(parse_json(line, limits))
        except Refused as exc:
            items.append(exc)
        if len(items) > limits.items:
            raise Refused(413, "too_many_items", f"more than {limits.items} lines",
                          limit="items", maximum=limits.items)
    return items


def parse_params(query: str, limits: Limits = LIMITS) -> dict[str, str]:
    """The fields of a query string or form body (a leading ``?`` allowed; the last of a repeated
    name wins), at most ``limits.params`` of them, each name and value at most ``string_chars``."""
    try:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True, max_num_fields=limits.params)
    except ValueError:
        raise Refused(400, "too_many_params", f"more than {limits.params} parameters",
                      limit="params", maximum=limits.params) from None
    for name, value in pairs:
        if len(name) > limits.string_chars or len(value) > limits.string_chars:
            raise Refused(400, "param_too_long", f"a parameter is longer than {limits.string_chars} characters",
                          limit="string_chars", maximum=limits.string_chars)
    return dict(pairs)
