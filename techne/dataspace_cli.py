"""CLI of the data-space forms: ``techne agreements export|import`` and ``techne consent receipt``.

Registered by :func:`register` (one line in :mod:`techne.cli`, whose error handler turns any other
:class:`~core.errors.TechneError` into one line: exit 2 refused, 1 unavailable). Exports print
JSON-LD on stdout.
An import validates everything first and writes nothing on refusal (exit 2 with every reason);
on success it writes one YAML file per agreement into the agreements directory, headed by a
comment listing what the foreign terms said that the YAML cannot keep (also printed on stderr).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from techne.choices import Lang, ReceiptFormat

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
"""What ``--email`` must look like: another text would name another person's reference (the empty
one is every anonymous event's) or nobody's, read as 'no consent recorded'."""
consent_app = typer.Typer(help="Consent: a person's receipt (ISO/IEC TS 27560 layout).", no_args_is_help=True)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]
AgreementsDir = Annotated[Path | None, typer.Option("--dir", help="Agreements directory (default: settings).")]


def _settings(**overrides: Any) -> Any:
    from core.settings import load_settings

    return load_settings(**{k: v for k, v in overrides.items() if v is not None})  # one line, never a value


def _fail(message: str) -> None:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(2)


def _dump(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))


def agreements_export(
    fmt: Annotated[str, typer.Option("--format", help="odrl (ODRL 2.2 Agreements) or dsp-catalog.")] = "odrl",
    directory: AgreementsDir = None,
    participant_id: Annotated[str, typer.Option(help="The catalogue's participant (dsp-catalog).")]
    = "urn:techne:bus",
    endpoint: Annotated[str | None, typer.Option(help="Where partners read (dsp-catalog; default: the "
                                                      "bootstrap servers).")] = None,
) -> None:
    """Print every agreement as ODRL 2.2 JSON-LD, or the Dataspace Protocol catalogue."""
    from core.venues import load_venues
    from schemas.agreements import load_agreements
    from schemas.dataspace import dsp, odrl

    settings = _settings()
    agreements = load_agreements(directory or settings.agreements_dir, set(load_venues(settings.venues_file)))
    if fmt == "odrl":
        _dump(odrl.document(agreements))
    elif fmt == "dsp-catalog":
        _dump(dsp.catalog(agreements, participant_id=participant_id,
                          endpoint=endpoint or f"kafka://{settings.bootstrap}"))
    else:
        _fail(f"error: unknown format {fmt!r} (odrl, dsp-catalog)")


def _yaml(imported: Any, source: str) -> str:
    agreement = imported.agreement
    data = agreement.model_dump(mode="json")
    data.update(valid_from=agreement.valid_from, valid_until=agreement.valid_until)  # YAML dates, unquoted
    if data.get("pseudonym_domain") is None:
        data.pop("pseudonym_domain")
    head = [f"# Imported from {source}."]
    if imported.lost:
        head.append("# Ce qui n'a pas pu être repris / what could not be kept:")
        head += [f"#   - {note}" for note in imported.lost]
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def agreements_import(
    file: Annotated[Path, typer.Argument(help="The contract or policy (JSON).")],
    source: Annotated[str, typer.Option("--from", help="prometheus-x (a contract) or odrl (policies).")],
    party: Annotated[list[str] | None, typer.Option(help="Map a foreign IRI to our id: IRI=ID (venue, partner "
                                                         "or event type); repeatable.")] = None,
    agreement_id: Annotated[str | None, typer.Option("--id", help="Id of the agreement (prometheus-x).")] = None,
    directory: AgreementsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the YAML, write nothing.")] = False,
) -> None:
    """Turn a Prometheus-X contract or ODRL agreement into agreement YAML; refuse what cannot be enforced."""
    from core.venues import load_venues
    from schemas.agreements import load_agreements
    from schemas.dataspace import odrl, prometheus_x
    from schemas.dataspace.profile import PolicyRefused

    settings = _settings()
    target = directory or settings.agreements_dir
    try:
        parties = dict(p.split("=", 1) for p in party or [])
    except ValueError:
        _fail("error: --party expects IRI=ID")
        return
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"Import refusé / refused: {file}: not readable JSON ({exc})")
        return
    try:
        if source == "prometheus-x":
            imported = [prometheus_x.from_contract(doc, parties, agreement_id)]
        elif source == "odrl":
            imported = odrl.from_document(doc, parties)
        else:
            _fail(f"error: unknown source {source!r} (prometheus-x, odrl)")
            return
        venues = set(load_venues(settings.venues_file))
        existing = {a.id for a in load_agreements(target, venues)} if target.is_dir() else set()
    except PolicyRefused as exc:
        _fail("Import refusé / refused:\n" + "\n".join(f"  - {r}" for r in exc.reasons))
        return
    problems = []
    for item in imported:
        unknown = sorted(set(item.agreement.provider_venues) - venues)
        if unknown:
            problems.append(f"{item.agreement.id}: unknown venues {unknown} (map them with --party IRI=<venue id>)")
        if item.agreement.id in existing or (target / f"{item.agreement.id}.yaml").exists():
            problems.append(f"{item.agreement.id}: an agreement with this id already exists in {target}")
    if problems:
        _fail("Import refusé / refused:\n" + "\n".join(f"  - {p}" for p in problems))
    texts = {item.agreement.id: _yaml(item, f"{source} {file.name}") for item in imported}
    for item in imported:
        for note in item.lost:
            typer.echo(f"perdu / lost: {note}", err=True)
    if dry_run:
        typer.echo("\n---\n".join(texts.values()))
        return
    target.mkdir(parents=True, exist_ok=True)
    for ident, text in texts.items():
        (target / f"{ident}.yaml").write_text(text, encoding="utf-8")
        typer.echo(f"{target / f'{ident}.yaml'}")


@consent_app.command("receipt")
def consent_receipt(
    venue: Annotated[str, typer.Option("--venue", help="Venue id.")],
    person_ref: Annotated[str | None, typer.Option("--person-ref", help="The person's reference at the venue "
                                                                        "(raw-topic key).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Or the person's e-mail (needs the subject key).")]
    = None,
    lang: Annotated[Lang, typer.Option(help="fr or en.")] = Lang.fr,
    fmt: Annotated[ReceiptFormat, typer.Option("--format", help="json (ISO/IEC TS 27560 layout) or text (to read).")]
    = ReceiptFormat.json,
    data_dir: DataDir = None,
) -> None:
    """Print a person's consent receipt (ISO/IEC TS 27560 layout) with the erasures done at partners."""
    from techne.receipts import person_ref as ref_of
    from techne.receipts import receipt

    if (person_ref is None) == (email is None):
        _fail("error: give --person-ref or --email (one of them)")
    if email is not None and not _EMAIL.fullmatch(email.strip()):
        _fail(f"error: adresse e-mail invalide / not an e-mail address: {email!r}")
    settings = _settings(data_dir=data_dir)  # errors: one line on stderr, exit 2 refused / 1 unavailable
    ref = person_ref if person_ref is not None else ref_of(settings, venue, str(email))
    given = receipt(settings, venue, ref, lang.value)
    if fmt is ReceiptFormat.text:
        from techne.receipt_text import render

        typer.echo(render(given, lang.value))
    else:
        _dump(given)


def register(app: typer.Typer, agreements_app: typer.Typer) -> None:
    """Add the commands to the ``techne`` app and its ``agreements`` group."""
    agreements_app.command("export")(agreements_export)
    agreements_app.command("import")(agreements_import)
    app.add_typer(consent_app, name="consent")
