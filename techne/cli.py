"""The ``techne`` command: the front door to every process of the bus."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from techne.errors import TechneError

app = typer.Typer(help="Techné audience bus: consent-filtered, pseudonymized venue events for partners.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
local_app = typer.Typer(help="Start/stop the embedded local Kafka broker (real Apache Kafka, KRaft).",
                        no_args_is_help=True)
app.add_typer(local_app, name="local")
bench_app = typer.Typer(help="Benchmarks: figures next to a baseline measured in the same run (--json: last line).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]
Bootstrap = Annotated[str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers (default: settings).")]


def _settings(data_dir: Path | None = None, bootstrap: str | None = None, **extra: Any) -> Any:
    from techne.settings import Settings

    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if bootstrap is not None:
        overrides["bootstrap"] = bootstrap
    return Settings(**overrides)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(2)


@local_app.command("up")
def local_up(data_dir: DataDir = None) -> None:
    """Start a local broker in the background; prints its bootstrap address."""
    from techne.local import LocalKafka

    settings = _settings(data_dir)
    broker = LocalKafka(settings.data_dir / "kafka", partitions=settings.partitions)
    try:
        bootstrap = broker.start()
    except TechneError as exc:
        _fail(exc)
    broker.proc = None  # leave it running detached; `techne local down` stops it
    typer.echo(bootstrap)


@local_app.command("down")
def local_down(data_dir: DataDir = None) -> None:
    """Stop the broker started by `techne local up`."""
    from techne.local import stop_detached

    stopped = stop_detached(_settings(data_dir).data_dir / "kafka")
    typer.echo("stopped" if stopped else "no local broker running")


@app.command()
def gateway(bootstrap: Bootstrap = None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the webhook gateway (HTTP): signed venue events in, Avro on raw topics out."""
    import uvicorn

    from producers.gateway import create_app

    try:
        asgi = create_app(_settings(bootstrap=bootstrap))
    except TechneError as exc:
        _fail(exc)
    uvicorn.run(asgi, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def worker(bootstrap: Bootstrap = None, data_dir: DataDir = None, loglevel: str = "WARN") -> None:
    """Run the stream worker: consent ledger, consent filter, pseudonymization, routing."""
    from streams.worker import run_worker

    try:
        run_worker(_settings(data_dir, bootstrap), loglevel=loglevel)
    except TechneError as exc:
        _fail(exc)


@app.command()
def sink(partner: Annotated[str, typer.Option(help="Partner id (its topic and its store).")],
         bootstrap: Bootstrap = None, data_dir: DataDir = None) -> None:
    """Run one partner's ClickHouse sink (embedded chDB store under the data dir)."""
    from sinks.runner import run_sink_process

    try:
        run_sink_process(_settings(data_dir, bootstrap), partner)
    except TechneError as exc:
        _fail(exc)


@app.command()
def query(sql: Annotated[str, typer.Argument(help="SQL to run on the partner's database.")],
          partner: Annotated[str, typer.Option(help="Partner id: only its store is opened.")],
          data_dir: DataDir = None,
          fmt: Annotated[str, typer.Option("--format", help="ClickHouse output format.")] = "PrettyCompact") -> None:
    """Run SQL on one partner's embedded store and print the rows."""
    from sinks.runner import query_store

    try:
        typer.echo(query_store(_settings(data_dir), partner, sql, fmt), nl=False)
    except TechneError as exc:
        _fail(exc)


agreements_app = typer.Typer(help="Data-sharing agreements: validate and explain them.", no_args_is_help=True)
app.add_typer(agreements_app, name="agreements")


@agreements_app.command("check")
def agreements_check(path: Annotated[Path | None, typer.Argument(help="Agreements directory.")] = None,
                     lang: Annotated[str, typer.Option(help="fr, en or both")] = "both") -> None:
    """Validate every agreement (exit 2 naming the file and field if one is invalid) and print,
    per venue, what is shared, with whom, for what purpose and for how long."""
    from streams.agreements import load_agreements
    from streams.summary import summarize
    from techne.venues import load_venues

    settings = _settings()
    try:
        venues = load_venues(settings.venues_file)
        agreements = load_agreements(path or settings.agreements_dir, set(venues))
    except TechneError as exc:
        _fail(exc)
        return
    names = {v.id: v.name for v in venues.values()}
    for language in (["fr", "en"] if lang == "both" else [lang]):
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

    for line in asyncio.run(dlq.show(_settings(bootstrap=bootstrap).bootstrap, stage, limit)):
        typer.echo(line)


@dlq_app.command("replay")
def dlq_replay(stage: Stage = "decode", bootstrap: Bootstrap = None,
               reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
               dry_run: bool = False) -> None:
    """Re-produce dead letters to their source topic (each once: progress is committed)."""
    import asyncio

    from streams import dlq

    n = asyncio.run(dlq.replay(_settings(bootstrap=bootstrap).bootstrap, stage, reason=reason, dry_run=dry_run))
    typer.echo(f"{'would replay' if dry_run else 'replayed'} {n} dead letter(s) from dlq.{stage}")


@app.command()
def demo(events: Annotated[int | None, typer.Option(help="Send N events, wait until all are accounted for.")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on the last line.")] = False,
         bootstrap: Bootstrap = None, data_dir: DataDir = None,
         rate: Annotated[float, typer.Option(help="Events per second when running until Ctrl-C.")] = 50.0,
         seed: int = 7) -> None:
    """Run the whole bus locally with synthetic traffic from the five pilot venues."""
    from techne.demo import run_demo

    try:
        summary = run_demo(_settings(data_dir, bootstrap), events=events, external_bootstrap=bootstrap is not None,
                           rate=rate, seed=seed, verbose=not as_json)
    except TechneError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    if events is not None and not summary["all_accounted"]:
        raise typer.Exit(1)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="techne")


if __name__ == "__main__":
    main()
