"""The partners' ClickHouse SQL: read-only, own database only, parsed by the real ClickHouse parser.

chDB (embedded ClickHouse) cannot run access-control statements (clickhouse-local has no writable
access storage), so each statement goes through ClickHouse's own parser (``formatQuery``) and its
text is checked: one ``GRANT SELECT`` per partner role, on that partner's database, and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import chdb
import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from sinks.ddl import database_name
from techne import clickhouse_access as ch
from tests.support.builders import agreement

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "deploy" / "clickhouse" / "partners.sql"


def statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def parse(statement: str) -> str:
    """ClickHouse's normalized form of ``statement`` (raises on a syntax error)."""
    quoted = statement.replace("\\", "\\\\").replace("'", "\\'")
    return str(chdb.query(f"SELECT formatQuery('{quoted}')", "TSVRaw")).strip()


def agreement_partners() -> list[str]:
    return partners(load_agreements(DEFAULT_AGREEMENTS, set(load_venues(DEFAULT_VENUES))))


def test_checked_in_file_is_the_generator_output() -> None:
    venues = sorted(load_venues(DEFAULT_VENUES))
    assert CHECKED_IN.read_text(encoding="utf-8") == ch.roles_sql(agreement_partners(), venues), (
        "deploy/clickhouse/partners.sql is stale: run `techne partner sql > deploy/clickhouse/partners.sql`")


def test_every_statement_parses() -> None:
    sql = ch.roles_sql(agreement_partners()) + ch.user_sql("observatoire", "pw")
    for statement in statements(sql):
        assert parse(statement)


def test_each_role_selects_its_own_database_only() -> None:
    sql = CHECKED_IN.read_text(encoding="utf-8")
    grants = [s for s in statements(sql) if s.upper().startswith("GRANT")]
    venues = sorted(load_venues(DEFAULT_VENUES))
    assert len(grants) == len(agreement_partners()) + len(venues), "one role per partner and per venue's store"
    for venue in venues:  # a venue reads its own store, as a partner does
        store = f"venue:{venue}"
        mine = [g for g in grants if g.endswith(f" TO {ch.role_name(store)}")]
        assert mine == [f"GRANT SELECT ON venue_{database_name(venue)}.* TO {ch.role_name(store)}"]
        assert ch.user_name(store) == f"venue_{database_name(venue)}_reader"
    for partner in agreement_partners():
        mine = [g for g in grants if g.endswith(f" TO {ch.role_name(partner)}")]
        assert mine == [f"GRANT SELECT ON {database_name(partner)}.* TO {ch.role_name(partner)}"]
    assert not any(re.search(r"\*\.\*", g) for g in grants), "no grant on every database"
    assert not any(re.search(r"\b(INSERT|ALTER|CREATE|DROP|TRUNCATE|ALL)\b", g) for g in grants)
    # every role is reset before its grant, so re-running the file removes anything granted by hand
    for partner in agreement_partners():
        assert f"REVOKE ALL ON *.* FROM {ch.role_name(partner)}" in statements(sql)


def test_profile_is_read_only_and_constant() -> None:
    (profile,) = [s for s in statements(CHECKED_IN.read_text(encoding="utf-8")) if "SETTINGS PROFILE" in s]
    assert "readonly = 2 CONST" in profile
    assert parse(profile).startswith(f"CREATE SETTINGS PROFILE OR REPLACE `{ch.PROFILE}`")


def test_user_sql_holds_a_salted_hash_and_only_its_role() -> None:
    password = ch.new_password()
    sql = ch.user_sql("reseau-danse", password)
    assert password not in sql
    create, grant, default = statements(sql)
    match = re.search(r"IDENTIFIED WITH sha256_hash BY '([0-9a-f]{64})' SALT '([0-9a-f]{32})'", create)
    assert match is not None
    import hashlib

    assert hashlib.sha256((password + match.group(2)).encode()).hexdigest() == match.group(1)
    assert "DEFAULT DATABASE reseau_danse" in create and f"SETTINGS PROFILE '{ch.PROFILE}'" in create
    assert grant == "GRANT techne_partner_reseau_danse TO partner_reseau_danse"
    assert default == "ALTER USER partner_reseau_danse DEFAULT ROLE techne_partner_reseau_danse"
    assert ch.user_sql("reseau-danse", password) != sql, "a fresh salt every time"


def test_unsafe_partner_ids_are_refused() -> None:
    for bad in ("a;DROP", "a b", "x'y", "a.b"):
        with pytest.raises(ConfigError):
            ch.role_sql(bad)


def test_a_partner_id_never_names_a_venue_store_or_the_bus_database() -> None:
    """A partner 'venue-gemeaux' had the database venue_gemeaux, which is Les Gémeaux's own store on
    the server: its sink wrote into it and `techne partner sql venue-gemeaux` granted SELECT on every
    event of the venue. 'audit' and ClickHouse's own databases collide the same way."""
    for bad in ("venue-gemeaux", "venue_gemeaux", "venue-nouveau-lieu", "audit", "system", "default",
                "information_schema"):
        with pytest.raises(ValidationError, match="would share the ClickHouse database"):
            agreement(partner=bad)
    for fine in ("venues-reseau", "auditeurs", "observatoire", "reseau-danse"):
        assert agreement(partner=fine).partner == fine


def test_compose_runs_the_roles_at_first_start() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    volumes = compose["services"]["clickhouse"]["volumes"]
    assert "./deploy/clickhouse/partners.sql:/docker-entrypoint-initdb.d/partners.sql:ro" in volumes
