"""The ``techne`` command: the front door to every process of the bus."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import Context as ClickContext
from typer.core import TyperGroup

from core.errors import Refused, TechneError, Unavailable
from insights import cli as insights_cli
from techne import dataspace_cli, deploy_cli, known, preference_cli
from techne.choices import Lang, LangOrBoth
from techne.console import cli as console_cli


class _OneErrorHandler(TyperGroup):
    """Every command's :class:`TechneError` becomes one line on stderr: exit 1 when the cause is
    transient (:class:`~core.errors.Unavailable`: retry later), else exit 2 (refused: fix the input)."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except TechneError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1 if isinstance(exc, Unavailable) else 2) from None


logging.getLogger("aiokafka").addHandler(logging.NullHandler())
"""The Kafka client's own lines ('Unable connect to …', one per attempt) are not printed by a
command that configured no logging (its one error line says it all); a service's configured
handlers still receive them."""

app = typer.Typer(help="Techné audience bus: consent-filtered, pseudonymized venue events for partners.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=_OneErrorHandler)
local_app = typer.Typer(help="Start/stop the embedded local Kafka broker (real Apache Kafka, KRaft).",
                        no_args_is_help=True)
app.add_typer(local_app, name="local")
bench_app = typer.Typer(help="Benchmarks: figures next to a baseline measured in the same run (--json: last line).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]
Bootstrap = Annotated[str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers (default: settings).")]


@contextmanager
def _kafka_errors(bootstrap: str) -> Iterator[None]:
    """A Kafka that cannot be reached is one line (exit 1, transient), not a client traceback."""
    from aiokafka.errors import KafkaError

    try:
        yield
    except KafkaError as exc:
        raise Unavailable(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); check --bootstrap") from None


def _settings(data_dir: Path | None = None, bootstrap: str | None = None, *, kind: Any = None, **extra: Any) -> Any:
    """This process's settings (``kind``: the process's own class, validated now: a missing secret
    stops the command here with one line)."""
    from core.settings import Settings, load_settings

    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if bootstrap is not None:
        overrides["bootstrap"] = bootstrap
    return load_settings(kind or Settings, **overrides)


@local_app.command("up")
def local_up(data_dir: DataDir = None,
             sasl: Annotated[bool, typer.Option("--sasl", help="SASL/SCRAM + ACLs, deny by default (own state dir).")]
             = False) -> None:
    """Start a local broker in the background; prints its bootstrap address."""
    from techne.local import LocalKafka

    settings = _settings(data_dir)
    broker = LocalKafka(settings.data_dir / ("kafka-sasl" if sasl else "kafka"), partitions=settings.partitions,
                        sasl=sasl)
    bootstrap = broker.start()
    broker.proc = None  # leave it running detached; `techne local down` stops it
    typer.echo(bootstrap)
    if sasl:
        typer.echo(f"SASL_PLAINTEXT, SCRAM-SHA-512, super user techne-admin: its password is \"admin\" in "
                   f"{broker.credentials_file} (set TECHNE_KAFKA_SECURITY_PROTOCOL, _USERNAME, _PASSWORD)", err=True)


@local_app.command("down")
def local_down(data_dir: DataDir = None) -> None:
    """Stop the broker started by `techne local up`."""
    from techne.local import stop_detached

    root = _settings(data_dir).data_dir
    stopped = [stop_detached(root / name) for name in ("kafka", "kafka-sasl")]
    typer.echo("stopped" if any(stopped) else "no local broker running")


@app.command()
def gateway(bootstrap: Bootstrap = None,
            host: Annotated[str | None, typer.Option(help="Listen address [default: TECHNE_GATEWAY_HOST, "
                                                          "127.0.0.1]")] = None,
            port: Annotated[int | None, typer.Option(help="Listen port [default: TECHNE_GATEWAY_PORT, "
                                                          "8080]")] = None) -> None:
    """Run the webhook gateway (HTTP): signed venue events in, Avro on raw topics out."""
    from core.settings import GatewaySettings
    from producers.gateway import create_app
    from producers.gateway.server import run

    settings = _settings(bootstrap=bootstrap, kind=GatewaySettings)
    run(create_app(settings), host or settings.gateway_host, port or settings.gateway_port,
        head_timeout=settings.request_head_timeout_s,
        trusted_proxies=settings.gateway_trusted_proxies)


@app.command()
def worker(bootstrap: Bootstrap = None, data_dir: DataDir = None, loglevel: str = "WARN") -> None:
    """Run the stream worker: consent ledger, consent filter, pseudonymization, routing."""
    from core.settings import WorkerSettings
    from streams.worker import run_worker

    settings = _settings(data_dir, bootstrap, kind=WorkerSettings)
    with _kafka_errors(settings.bootstrap):
        run_worker(settings, loglevel=loglevel)


@app.command()
def sink(partner: Annotated[str | None, typer.Option(help="Partner id (its topics and its store).")] = None,
         venue: Annotated[str | None, typer.Option(help="Venue id: its own store (venue.<id>.* topics).")] = None,
         audit: Annotated[bool, typer.Option("--audit", help="Run the audit sink (techne.audit) instead.")] = False,
         bootstrap: Bootstrap = None, data_dir: DataDir = None) -> None:
    """Run one partner's ClickHouse sink, a venue's own store's, or the audit sink (chDB under the
    data dir, or TECHNE_CLICKHOUSE_URL)."""
    from core.settings import SinkSettings
    from sinks.runner import run_audit_process, run_sink_process
    from sinks.tables import VENUE_STORE

    if [partner is not None, venue is not None, audit].count(True) != 1:
        raise Refused("give exactly one of --partner P, --venue V or --audit")
    settings = _settings(data_dir, bootstrap, kind=SinkSettings)
    with _kafka_errors(settings.bootstrap):
        if audit:
            run_audit_process(settings)
        else:
            run_sink_process(settings, partner or f"{VENUE_STORE}{venue}")


@app.command()
def query(sql: Annotated[str, typer.Argument(help="SQL to run on the partner's database.")],
          partner: Annotated[str | None, typer.Option(help="Partner id: only its store is opened.")] = None,
          venue: Annotated[str | None, typer.Option(help="Venue id: its own store (instead of a partner's).")] = None,
          data_dir: DataDir = None,
          fmt: Annotated[str, typer.Option("--format", help="ClickHouse output format.")] = "PrettyCompact") -> None:
    """Run SQL on one partner's embedded store, or a venue's own, and print the rows."""
    from sinks.runner import query_store
    from sinks.tables import VENUE_STORE

    if (partner is None) == (venue is None):
        raise Refused("give exactly one of --partner P or --venue V")
    typer.echo(query_store(_settings(data_dir), partner or f"{VENUE_STORE}{venue}", sql, fmt), nl=False)


agreements_app = typer.Typer(help="Data-sharing agreements: validate and explain them.", no_args_is_help=True)
app.add_typer(agreements_app, name="agreements")
dataspace_cli.register(app, agreements_app)  # agreements export|import, consent receipt
preference_cli.register(dataspace_cli.consent_app)  # consent link (a person's preference centre)
app.add_typer(console_cli.console_app, name="console")  # the venue's web console and its users
deploy_cli.register(app)  # deploy init, backup create|restore


@agreements_app.command("check")
def agreements_check(path: Annotated[Path | None, typer.Argument(help="Agreements directory.")] = None,
                     lang: Annotated[LangOrBoth, typer.Option(help="fr, en or both")] = LangOrBoth.both) -> None:
    """Validate every agreement (exit 2 naming the file and field if one is invalid) and print,
    per venue, what is shared, with whom, for what purpose and for how long."""
    from core.venues import load_venues
    from schemas.agreements import load_agreements
    from streams.summary import summarize

    settings = _settings()
    venues = load_venues(settings.venues_file)
    agreements = load_agreements(path or settings.agreements_dir, set(venues))
    names = {v.id: v.name for v in venues.values()}
    for language in (["fr", "en"] if lang is LangOrBoth.both else [lang.value]):
        typer.echo(summarize(agreements, names, language))
    typer.echo(f"{len(agreements)} agreement(s) valid.")


dlq_app = typer.Typer(help="Dead letters: inspect and re-inject after a fix.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
Stage = Annotated[str, typer.Option(help="Stage whose dead letters to read: decode, route or sink.")]


@dlq_app.command("show")
def dlq_show(stage: Stage = "decode", bootstrap: Bootstrap = None, limit: int = 50) -> None:
    """List dead letters (reason, source, time, size) without their payload."""
    import asyncio

    from streams import dlq

    settings = _settings(bootstrap=bootstrap)
    known.dlq_stage(stage)
    with _kafka_errors(settings.bootstrap):
        lines = asyncio.run(dlq.show(settings.bootstrap, stage, limit))
    for line in lines:
        typer.echo(line)


@dlq_app.command("replay")
def dlq_replay(stage: Stage = "decode", bootstrap: Bootstrap = None,
               reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
               dry_run: bool = False) -> None:
    """Re-produce dead letters to their source topic (each once: progress is committed)."""
    import asyncio

    from streams import dlq

    settings = _settings(bootstrap=bootstrap)
    known.dlq_stage(stage)
    with _kafka_errors(settings.bootstrap):
        n = asyncio.run(dlq.replay(settings.bootstrap, stage, reason=reason, dry_run=dry_run))
    typer.echo(f"{'would replay' if dry_run else 'replayed'} {n} dead letter(s) from dlq.{stage}")


@bench_app.command("streams")
def bench_streams(events: int = 20_000, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Worker throughput vs a minimal Faust forwarder and a bare aiokafka passthrough."""
    from bench.streams import main as bench_main

    bench_main(events, as_json)


partner_app = typer.Typer(help="Partners' Kafka access: SCRAM credentials, topics, read-only prefixed ACLs.",
                          no_args_is_help=True)
app.add_typer(partner_app, name="partner")
venue_app = typer.Typer(help="Venues' own Kafka producers: SCRAM credentials, WRITE on raw.<venue> only.",
                        no_args_is_help=True)
app.add_typer(venue_app, name="venue")
Rotate = Annotated[bool, typer.Option("--rotate", help="Issue a new password to a principal that has one.")]


def _access(bootstrap: str | None) -> Any:
    from techne.access import Access

    settings = _settings(bootstrap=bootstrap)
    return settings, Access(settings.bootstrap, settings.kafka_auth())


def _print_issued(kind: str, name: str, issued: Any, groups: str | None = None) -> None:
    typer.echo(f"{kind} {name} onboarded")
    typer.echo(f"  user:   {issued.username} (SASL SCRAM-SHA-512)")
    typer.echo(f"  topics: {', '.join(issued.topics)}")
    if groups:
        typer.echo(f"  groups: {groups}")
    for acl in issued.acls:
        typer.echo(f"  ACL:    {acl}")
    typer.echo(f"password: {issued.password.get_secret_value()}")
    typer.echo("(shown once, stored nowhere: hand it over through a secure channel now)")


@partner_app.command("onboard")
def partner_onboard(partner: str, bootstrap: Bootstrap = None, rotate: Rotate = False) -> None:
    """Create partner P's credentials, its topics partner.P.*, and READ/DESCRIBE on topics and groups partner.P.*"""
    known.partner(_settings(), partner)
    settings, access = _access(bootstrap)
    issued = access.onboard_partner(partner, settings.partitions, rotate=rotate)
    _print_issued("partner", partner, issued, groups=f"partner.{partner}.*")


@partner_app.command("offboard")
def partner_offboard(partner: str, bootstrap: Bootstrap = None) -> None:
    """Revoke every ACL of partner P and delete its credentials (its topics are kept)."""
    acls, creds = _access(bootstrap)[1].offboard_partner(partner)
    typer.echo(f"partner {partner}: {acls} ACL(s) revoked, credentials {'deleted' if creds else 'absent'}")


@partner_app.command("sql")
def partner_sql(partner: Annotated[str | None, typer.Argument(help="Partner id; none: every partner's role.")] = None
                ) -> None:
    """ClickHouse server SQL: read-only role on the partner's own database (and, for one partner, its user).

    Without a partner: the roles of every partner of the agreements and of every venue's own store
    (deploy/clickhouse/partners.sql). `venue:V` stands for venue V's own store.
    With one: its role and user; the new password goes to stderr once, the SQL (salted hash only) to
    stdout, e.g. `techne partner sql P | docker compose exec -T clickhouse clickhouse-client -n`."""
    from techne import clickhouse_access as ch

    if partner is None:
        from core.venues import load_venues
        from schemas.agreements import load_agreements, partners

        settings = _settings()
        agreements = load_agreements(settings.agreements_dir, set(load_venues(settings.venues_file)))
        typer.echo(ch.roles_sql(partners(agreements), sorted(load_venues(settings.venues_file))), nl=False)
        return
    known.partner(_settings(), partner)
    password = ch.new_password()
    sql = ch.partner_sql(partner, password)
    typer.echo(f"user {ch.user_name(partner)} password (shown once): {password}", err=True)
    typer.echo(sql, nl=False)


@app.command()
def lag(bootstrap: Bootstrap = None,
        serve: Annotated[bool, typer.Option("--serve", help="Export on TECHNE_METRICS_PORT until stopped.")] = False,
        interval: Annotated[float, typer.Option(help="Seconds between measurements with --serve.")] = 15.0) -> None:
    """Consumer lag of the bus's groups (worker, partner sinks) per topic partition, from broker offsets."""
    import asyncio

    from core import metrics
    from core.venues import load_venues
    from schemas.agreements import load_agreements, partners
    from techne import lag as lag_

    settings = _settings(bootstrap=bootstrap)
    agreements = load_agreements(settings.agreements_dir, set(load_venues(settings.venues_file)))
    groups = lag_.watched_groups(settings.worker_id, partners(agreements), sorted(load_venues(settings.venues_file)))
    if not serve:
        typer.echo(lag_.format_table(asyncio.run(lag_.measure_once(settings.bootstrap, settings.kafka_auth(),
                                                                   groups))))
        return
    if settings.metrics_port is None:
        raise Refused("--serve needs TECHNE_METRICS_PORT")
    metrics.serve(settings.metrics_port, settings.metrics_host, metrics.LAG)
    asyncio.run(lag_.serve(lag_.LagMeter(settings.bootstrap, settings.kafka_auth(), groups), interval))


@venue_app.command("onboard")
def venue_onboard(venue: str, bootstrap: Bootstrap = None, rotate: Rotate = False) -> None:
    """Create venue V's producer credentials and WRITE/DESCRIBE on raw.V (nothing to read)."""
    known.venue(_settings(), venue)
    settings, access = _access(bootstrap)
    issued = access.onboard_venue(venue, settings.partitions, rotate=rotate)
    _print_issued("venue", venue, issued)


@venue_app.command("offboard")
def venue_offboard(venue: str, bootstrap: Bootstrap = None) -> None:
    """Revoke venue V's ACLs and delete its credentials."""
    acls, creds = _access(bootstrap)[1].offboard_venue(venue)
    typer.echo(f"venue {venue}: {acls} ACL(s) revoked, credentials {'deleted' if creds else 'absent'}")


report_app = typer.Typer(help="Reports for venues and their DPOs, from the audit store.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("sharing")
def report_sharing(venue: Annotated[str, typer.Option(help="Venue id.")], data_dir: DataDir = None,
                   since: Annotated[str | None, typer.Option(help="Only decisions since YYYY-MM-DD.")] = None,
                   lang: Annotated[LangOrBoth, typer.Option(help="fr, en or both")] = LangOrBoth.both) -> None:
    """What the venue shares, why, with whom: decisions per partner, purpose and event type,
    consent drops and erasures (read through the one read path: works while the audit sink runs)."""
    from datetime import date

    from sinks.runner import audit_rows
    from streams.report import render, report_sql

    known.venue(_settings(), venue)
    try:
        day = date.fromisoformat(since) if since else None
    except ValueError:
        raise Refused(f"--since {since!r}: expected a day as YYYY-MM-DD") from None
    try:
        rows = audit_rows(_settings(data_dir), report_sql(venue, day))
    except ValueError as exc:
        raise Refused(str(exc)) from None
    for language in (["fr", "en"] if lang is LangOrBoth.both else [lang.value]):
        typer.echo(render(rows, venue, language, day) + "\n")


@app.command()
def demo(events: Annotated[int | None, typer.Option(help="Send N events, wait until all are accounted for.")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on the last line.")] = False,
         bootstrap: Bootstrap = None, data_dir: DataDir = None,
         rate: Annotated[float, typer.Option(help="Events per second when running until Ctrl-C.")] = 50.0,
         seed: int = 7) -> None:
    """Run the whole bus locally with synthetic traffic from the five pilot venues."""
    from techne.demo import print_interrupted, run_demo

    summary = run_demo(_settings(data_dir, bootstrap), events=events, external_bootstrap=bootstrap is not None,
                       rate=rate, seed=seed, verbose=not as_json)
    if "interrupted" in summary and not as_json:
        print_interrupted(summary)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    if "interrupted" in summary:
        raise typer.Exit(128 + summary["signal"])
    if events is not None and not summary["all_accounted"]:
        raise typer.Exit(1)


@bench_app.command("codec")
def bench_codec(events: int = 20_000, rounds: int = 5,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Codec encode/decode events/s on ticket orders vs bare fastavro schemaless (baseline)."""
    from bench.codec import main as bench_main

    bench_main(events, rounds, as_json)


@bench_app.command("ingest")
def bench_ingest(events: int = 20_000, singles: int = 5_000, concurrency: int = 32,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Gateway batch events/s and single-event requests/s over loopback HTTP vs a bare aiokafka producer."""
    from bench.ingest import main as bench_main

    bench_main(events, singles, concurrency, as_json)


@bench_app.command("e2e")
def bench_e2e(events: int = 20_000, rate: int = 1_000, seconds: int = 10,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Gateway -> worker -> partner tables: sustained events/s and latency at a paced rate vs aiokafka."""
    from bench.e2e import main as bench_main

    bench_main(events, rate, seconds, as_json)


@bench_app.command("soak")
def bench_soak(minutes: float = 30.0, rate: int = 50,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The live pipeline for N minutes: every process's RSS each minute and its slope (flat memory)."""
    from bench.soak import main as bench_main

    bench_main(minutes, rate, as_json)


@bench_app.command("sink")
def bench_sink(rows: int = 240_000, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Partner topic -> chDB rows/s through a real sink process vs a direct chDB bulk insert (baseline)."""
    from bench.sinks import main as bench_main

    bench_main(rows, as_json)


@app.command()
def registry(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve the catalogue read-only through the Confluent Schema Registry REST API."""
    from core.venues import load_venues
    from producers.gateway.server import run
    from schemas.agreements import load_agreements, partners
    from schemas.registry_api import create_app

    settings = _settings()
    known = partners(load_agreements(settings.agreements_dir, set(load_venues(settings.venues_file))))
    run(create_app(partners=known), host, port)  # the gateway's server: request heads bounded (431)


import_app = typer.Typer(help="Import venue exports through the same validation and producer as webhooks.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("csv")
def import_csv(file: Annotated[Path, typer.Argument(help="The export: CSV (delimiter and encoding detected) or XLSX.",
                                                    exists=True, dir_okay=False)],
               venue: Annotated[str, typer.Option(help="Venue id the rows belong to.")],
               profile: Annotated[str, typer.Option(help="Mapping profile: name in deploy/import-profiles/ or path.")],
               bootstrap: Bootstrap = None, data_dir: DataDir = None,
               dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; send nothing.")] = False,
               errors_out: Annotated[Path | None, typer.Option(help="Write every row error to this CSV.")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on the last line.")] = False,
               lang: Annotated[Lang, typer.Option(help="Language of the summary and row errors: fr or en.")] = Lang.fr
               ) -> None:
    """Import a CSV or XLSX export: one event per row, row errors reported (line, column, reason, in
    French by default) without stopping; re-importing the same file sends nothing again. Exit 1 if
    some rows were rejected, 2 if the file cannot be read (the cause named in French and English)."""
    from producers.csv_import import main as import_main

    known.venue(_settings(), venue)
    report = import_main(_settings(data_dir, bootstrap), file, venue, profile, dry_run=dry_run,
                         errors_out=errors_out, as_json=as_json, lang=lang.value)
    if report.errors:
        raise typer.Exit(1)


connector_app = typer.Typer(help="Vendor connectors that are polled (vendors without webhooks).", no_args_is_help=True)
app.add_typer(connector_app, name="connector")


@connector_app.command("poll")
def connector_poll(source: Annotated[str, typer.Argument(help="Poll connector: billetweb or weezevent.")],
                   venue: Annotated[str, typer.Option(help="Venue id whose account is polled.")],
                   base_url: Annotated[str | None, typer.Option(
                       help="Vendor API base URL (default: https://www.billetweb.fr/api, https://api.weezevent.com)."
                   )] = None,
                   interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 300.0,
                   once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
                   bootstrap: Bootstrap = None, data_dir: DataDir = None) -> None:
    """Poll a vendor API with its persisted cursor; events go through the same validation and producer."""
    import asyncio

    from producers.poll import run

    known.venue(_settings(), venue)
    url = base_url or {"weezevent": "https://api.weezevent.com"}.get(source, "https://www.billetweb.fr/api")
    reports = asyncio.run(run(_settings(data_dir, bootstrap), venue, source, url, interval=interval, once=once))
    for r in reports:
        typer.echo(json.dumps({"fetched": r.fetched, "sent": r.sent, "rejected": r.rejected}, ensure_ascii=False))


schemas_app = typer.Typer(help="Event catalogue: generated models and docs, compatibility and privacy checks.",
                          no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
Check = Annotated[bool, typer.Option("--check", help="Only check: exit 1 if the checked-in files are stale.")]


@schemas_app.command("docs")
def schemas_docs(check: Check = False) -> None:
    """Write docs/catalogue.en.md and docs/catalogue.fr.md from the .avsc files."""
    from schemas import docs

    _generated(docs.stale() if check else [str(p) for p in docs.write()], check)


@schemas_app.command("models")
def schemas_models(check: Check = False) -> None:
    """Write the pydantic models (schemas/generated/) from the .avsc files."""
    from schemas import gen_models

    _generated(gen_models.stale() if check else [str(p) for p in gen_models.write()], check)


def _generated(files: list[str], check: bool) -> None:
    for f in files:
        typer.echo(f"{'stale' if check else 'wrote'}: {f}")
    if check and files:
        raise typer.Exit(1)


@schemas_app.command("check")
def schemas_check() -> None:
    """BACKWARD compatibility of every version, privacy tags, fingerprints of published versions."""
    from schemas.checks import all_problems

    problems = all_problems()
    for p in problems:
        typer.secho(p, fg="red", err=True)
    typer.echo(f"{len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


app.add_typer(insights_cli.insights_app, name="insights")
app.command("sibil")(insights_cli.sibil)
app.command("init")(insights_cli.init)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="techne")


if __name__ == "__main__":
    main()
