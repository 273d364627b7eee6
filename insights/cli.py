"""``techne insights …``, ``techne sibil`` and ``techne init`` (registered by :mod:`techne.cli`).

Heavy modules are imported inside the commands so that ``techne --help`` stays fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import TechneError
from core.venues import require_venue

insights_app = typer.Typer(
    help="Shared audience insights on a partner's store, with small-cell protection (k persons per cell at least).",
    no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]
Partner = Annotated[str, typer.Option("--partner",
                                      help="Partner id whose store is read (venue:V for venue V's own store).")]
Lang = Annotated[str, typer.Option("--lang", help="fr (default) or en.")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on the last line.")]
Season = Annotated[str | None, typer.Option("--season", help="Season, e.g. 2026 or 2026-27 (rows of the release).")]
Venue = Annotated[str | None, typer.Option("--venue", help="Only rows naming this venue (rows of the release).")]


def _settings(data_dir: Path | None = None, bootstrap: str | None = None) -> Any:
    from core.settings import load_settings

    overrides: dict[str, Any] = {"data_dir": data_dir, "bootstrap": bootstrap}
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})  # one line, never a value


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(2)


def _season(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.match(r"^(\d{4})(-\d{2})?$", text.strip())
    if not match:
        _fail(TechneError(f"season {text!r}: expected 2026 or 2026-27"))
        return None
    return int(match.group(1))


def _lang(lang: str) -> str:
    if lang not in ("fr", "en"):
        _fail(TechneError(f"--lang {lang!r}: fr or en"))
    return lang


def _release(partner: str, data_dir: Path | None) -> Any:
    from insights.engine import compute

    try:
        return compute(_settings(data_dir), partner)
    except TechneError as exc:
        _fail(exc)


def _show(name: str, partner: str, data_dir: Path | None, as_json: bool, season: str | None, venue: str | None,
          lang: str) -> None:
    from insights import render

    chosen, language = _season(season), _lang(lang)
    if venue is not None:
        try:
            require_venue(_settings(data_dir).venues_file, venue)
        except TechneError as exc:
            _fail(exc)
    release = _release(partner, data_dir)
    if as_json:
        typer.echo(json.dumps(render.insight_json(release, name, chosen, venue), ensure_ascii=False))
    else:
        typer.echo(render.text(release, name, language, chosen, venue))


def _register(name: str, command: str, doc: str) -> None:
    def show(partner: Partner, data_dir: DataDir = None, as_json: AsJson = False, season: Season = None,
             venue: Venue = None, lang: Lang = "fr") -> None:
        _show(name, partner, data_dir, as_json, season, venue, lang)

    show.__doc__ = doc
    insights_app.command(command)(show)


for _name, _command, _doc in (
    ("overlap", "overlap", "Audience overlap between venues per season (persons at A who also attended B)."),
    ("loyalty", "loyalty", "First-time vs returning spectators, visit frequency, lapsed spectators, per season."),
    ("geography", "geography", "Geographic reach: spectators by département, per venue and season."),
    ("crossover", "crossover", "Discipline crossover: persons who attended two disciplines in a season."),
    ("lead_time", "lead-time", "Booking lead time (order to performance) by discipline and tariff."),
    ("conversion", "conversion", "E-mail click followed by an order at the same venue within 7 days."),
    ("attendance", "attendance", "Ticket holders per performance and venue, those scanned in, the no-shows."),
    ("campaign_funnel", "funnel", "Campaign funnel: sent, delivered, opened, clicked, ordered within 7 days."),
    ("acquisition", "acquisition", "Cost per new spectator by channel and month: ad spend against first-time buyers "
                                   "attributed by first touch (best on a venue's own store: --partner venue:V)."),
    ("web_before_purchase", "web-before-purchase", "Pages and contents most seen by consented first-time buyers "
                                                   "in the 30 days before their first order."),
):
    _register(_name, _command, _doc)


@insights_app.command("report")
def report(partner: Partner, html: Annotated[Path, typer.Option("--html", help="HTML file to write.")],
           data_dir: DataDir = None, lang: Lang = "fr",
           season: Annotated[str | None, typer.Option(help="Season of the charts (default: latest).")] = None) -> None:
    """Write every insight as one self-contained HTML page (charts inline, no network)."""
    from insights.html import report as render_html

    chosen, language = _season(season), _lang(lang)
    release = _release(partner, data_dir)
    html.write_text(render_html(release, language, chosen), encoding="utf-8")
    typer.echo(f"{'écrit' if language == 'fr' else 'wrote'}: {html}")


@insights_app.command("publish")
def publish_cmd(partner: Partner, data_dir: DataDir = None) -> None:
    """Write the protected release (published cells only) to <partner>.insights_release, for dashboards."""
    from insights.engine import compute
    from insights.publish import TABLE, publish

    written: list[int] = []
    try:
        compute(_settings(data_dir), partner, then=lambda store, release: written.append(publish(store, release)))
    except TechneError as exc:
        _fail(exc)
        return
    typer.echo(f"{written[0]} rows in {partner}.{TABLE}")


@insights_app.command("views")
def views_cmd(partner: Partner, data_dir: DataDir = None) -> None:
    """(Re)create the insight views on the partner's store (aggregate views: k of its agreements) and list them."""
    from insights import views
    from insights.engine import open_partner_store, own_store, partner_terms, store_database
    from schemas.agreements import load_agreements

    settings = _settings(data_dir)
    database = store_database(partner)
    try:
        threshold = partner_terms(load_agreements(settings.agreements_dir), partner)[0]
        store = open_partner_store(settings, partner)
        try:
            available = views.ensure_views(store, database, threshold, own_store(partner))
        finally:
            store.close()
    except TechneError as exc:
        _fail(exc)
        return
    for name, _ in views.view_statements(database, available, threshold, own_store(partner)):
        typer.echo(f"{database}.{name}")


@insights_app.command("sample")
def sample_cmd(partner: Partner, data_dir: DataDir = None, persons: int = 2500, seed: int = 11) -> None:
    """Fill an EMPTY partner store with synthetic shared orders and e-mail clicks, to try the insights."""
    from insights import sample
    from sinks.runner import open_store, tables_for

    settings = _settings(data_dir)
    try:
        tables = tables_for(settings, partner)
        spec = tables.orders
        with open_store(settings, partner) as store:
            ((rows,),) = store.query(f"SELECT count() FROM {spec.qualified}")  # noqa: S608
            if int(rows):
                raise TechneError(f"the store of {partner} already holds {rows} rows: sample data goes to an empty "
                                  "store only (use another --data-dir)")
            n_orders, n_clicks = sample.load(store, tables, persons, seed)
    except TechneError as exc:
        _fail(exc)
        return
    typer.echo(f"{n_orders} orders and {n_clicks} e-mail clicks written to {settings.partner_store_dir(partner)}")


def sibil(venue: Annotated[str, typer.Option(help="Venue id (its own store is read).")],
          quarter: Annotated[str, typer.Option(help="Quarter, e.g. 2026Q4.")],
          csv: Annotated[Path | None, typer.Option("--csv", help="CSV file (default: <venue>-<quarter>-sibil.csv).")]
          = None,
          data_dir: DataDir = None,
          from_topic: Annotated[bool, typer.Option(
              "--from-topic", help="Read the raw topic raw.<venue> instead (kept ~7 days: recent quarters only).")]
          = False,
          bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers (--from-topic).")] = None,
          lang: Lang = "fr") -> None:
    """The quarter's SIBIL ticketing declaration per performance (CSV + French summary), from the
    venue's own store (every ticketing event of the venue, kept 3 years), with the declarant's
    name, SIRET and type of place from the venue directory."""
    import asyncio

    from core.venues import load_venues
    from insights import sibil as sib
    from insights.sibil_source import read_venue_events, read_venue_store
    language = _lang(lang)
    try:
        period = sib.Quarter.parse(quarter)
    except ValueError as exc:
        _fail(TechneError(str(exc)))
        return
    settings = _settings(data_dir, bootstrap)
    try:
        require_venue(settings.venues_file, venue)
        entry = load_venues(settings.venues_file)[venue]
        declarant = sib.Declarant(entry.name, entry.siret, entry.place_type, entry.city)
        if from_topic:
            events, coverage = asyncio.run(read_venue_events(settings, venue))
            declaration = sib.declare(events, venue, period)
            declaration.declarant = declarant
            warnings = coverage.warnings(period, language)
        else:
            rows, store_coverage = read_venue_store(settings, venue, period)
            declaration = sib.declare_orders(rows, venue, period, declarant)
            warnings = store_coverage.warnings(period, language)
    except TechneError as exc:
        _fail(exc)
        return
    target = csv or Path(f"{venue}-{period}-sibil.csv")
    target.write_text(sib.to_csv(declaration), encoding="utf-8-sig")
    typer.echo(sib.summary(declaration, language, warnings))
    typer.echo(f"CSV: {target}")


def _ask(value: str | None, interactive: bool, question: str, check: Callable[[str], Any], lang: str,
         default: str | None = None) -> str:
    """The answer given as an option, or asked; each answer is checked as it is given: a refused
    one is explained (French by default) and asked again, or ends the command (exit 2) without a
    terminal to ask on (``--no-input``)."""
    fr = lang == "fr"
    while True:
        if value is None:
            if not interactive:
                if default is not None:
                    value = default
                else:
                    _fail(TechneError(f"réponse manquante : {question} (donnez l'option, ou lancez sans --no-input)"
                                      if fr else f"missing answer: {question} (give the option, or run without "
                                      "--no-input)"))
            else:
                value = str(typer.prompt(question, default=default))
        assert value is not None
        problem = check(value.strip())
        if problem is None:
            return value.strip()
        message = problem[0] if fr else problem[1]
        if not interactive:
            _fail(TechneError(message))
        typer.secho(f"  {message}", fg="red", err=True)
        value = None


def init(name: Annotated[str | None, typer.Option(help="Venue name (nom du lieu).")] = None,
         venue_id: Annotated[str | None, typer.Option("--id", help="Venue id (default: from the name).")] = None,
         city: Annotated[str | None, typer.Option(help="City (ville).")] = None,
         tool: Annotated[str | None, typer.Option("--ticketing", help="Ticketing tool (outil de billetterie).")]
         = None,
         mode: Annotated[str | None, typer.Option("--connection", help="webhook or csv.")] = None,
         share: Annotated[list[str] | None, typer.Option(
             help="partner:purpose[:preset], repeatable; presets: essentiel, montants, territoire.")] = None,
         no_share: Annotated[bool, typer.Option("--no-share", help="Share nothing for now.")] = False,
         no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt (fail on a missing answer).")]
         = False,
         data_dir: DataDir = None, lang: Lang = "fr") -> None:
    """Set up a venue (in French by default): its entry in the venue directory, its webhook secret
    (shown once, kept in a 0600 file) and draft data-sharing agreements; then the next steps.
    Each answer is checked as it is given (asked again if refused). Files go where you stand
    (./deploy/venues.yaml, ./deploy/agreements/drafts/, ./.techne/secrets/) unless
    TECHNE_VENUES_FILE, TECHNE_AGREEMENTS_DIR or --data-dir say otherwise."""
    from insights import onboard
    from schemas.agreements import load_agreements, partners

    language = _lang(lang)
    fr = language == "fr"
    interactive = not no_input
    settings = _settings(data_dir)
    try:
        known = partners(load_agreements(settings.agreements_dir))
    except TechneError:
        known = []
    venues_file, agreements_dir = settings.venues_file, settings.agreements_dir  # relative: where you stand
    if interactive:
        typer.echo("Bienvenue ! Quelques questions pour configurer votre lieu." if fr
                   else "Welcome! A few questions to set up your venue.")
    venue_name = _ask(name, interactive, "Nom du lieu" if fr else "Venue name", onboard.name_problem, language)
    chosen_id = _ask(venue_id, interactive, "Identifiant court" if fr else "Short id",
                     lambda v: onboard.id_problem(v, venues_file), language, onboard.slug(venue_name) or None)
    town = _ask(city, interactive, "Ville" if fr else "City", lambda v: None, language, "")
    ticketing = _ask(tool, interactive, ("Outil de billetterie" if fr else "Ticketing tool")
                     + f" ({', '.join(onboard.TOOLS)})", onboard.tool_problem, language, "autre")
    connection = _ask(mode, interactive, ("Connexion : webhook (envoi automatique) ou csv (export manuel)" if fr
                                          else "Connection: webhook (automatic) or csv (manual export)"),
                      onboard.mode_problem, language, "csv")
    shares: list[onboard.Share] = []
    for text in [] if no_share else share or []:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            _fail(TechneError(f"partage « {text} » : attendu partenaire:finalité[:jeu de données]" if fr
                              else f"share {text!r}: expected partner:purpose[:preset]"))
        given = onboard.Share(*parts)
        for problem in onboard.share_problems(given, known)[:1]:
            _fail(TechneError(problem[0] if fr else problem[1]))
        shares.append(given)
    if interactive and not share and not no_share:
        typer.echo(("Partenaires connus : " if fr else "Known partners: ") + (", ".join(known) or "—"))

        def partner_list(text: str) -> onboard.Problem | None:
            for partner in [p.strip() for p in text.split(",") if p.strip()]:
                if (problem := onboard.partner_problem(partner, known)) is not None:
                    return problem
            return None

        wanted = _ask(None, True, "Avec quels partenaires partager ? (séparés par des virgules, vide : aucun)" if fr
                      else "Share with which partners? (comma-separated, empty: none)", partner_list, language, "")
        for partner in [p.strip() for p in wanted.split(",") if p.strip()]:
            purpose = _ask(None, True, f"{partner} — " + ("finalité" if fr else "purpose")
                           + f" ({', '.join(onboard.SHAREABLE_PURPOSES)})", onboard.purpose_problem, language,
                           "cross_venue_analytics")
            for key, text in onboard.PRESET_TEXT[language].items():
                typer.echo(f"  {key}: {text}")
            preset = _ask(None, True, "Données partagées" if fr else "Data shared", onboard.preset_problem, language,
                          "essentiel")
            shares.append(onboard.Share(partner, purpose, preset))
    answers = onboard.Answers(venue_name, chosen_id, town, ticketing, connection, tuple(shares))
    try:
        written = onboard.apply(answers, venues_file, agreements_dir, settings.data_dir)
    except TechneError as exc:
        _fail(exc)
        return
    typer.echo(f"{'Lieu ajouté à' if fr else 'Venue added to'} {written.venues_file}: {answers.venue_id}")
    typer.echo(("Secret du webhook (affiché une seule fois ; conservé dans " if fr
                else "Webhook secret (shown once; kept in ") + f"{written.secret_file}, 0600):")
    typer.echo(f"  {written.secret}")
    for path in written.drafts:
        typer.echo(f"{'Projet d’accord' if fr else 'Draft agreement'}: {path}")
    typer.echo("")
    typer.echo(onboard.next_steps(answers, written, agreements_dir, language))
