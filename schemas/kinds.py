"""The kinds of audience data and where each may go: one table of facts, read by every stage.

A :class:`Kind` names, for one kind of data, the raw event types it gathers, the partner-facing
schema they are shared as, the stream (``partner.<id>.<stream>`` for a partner,
``venue.<venue>.<stream>`` for the venue's own store) and the table a store keeps them in:

========== ================================================ ======================== ================
kind       raw event types                                  shared as (stream)       table
========== ================================================ ======================== ================
ticketing  ticket.order_placed/_paid/_cancelled/_refunded,  SharedTicketOrder        ticket_orders
           ticket.issued, ticket.exchanged                  (``ticketing``)
clicks     campaign.email_clicked                           SharedEmailClick         email_clicks
                                                            (``campaign``)
campaign   campaign.email_sent/_delivered/_opened/          SharedCampaignEvent      campaign_events
           _bounced/_unsubscribed                           (``mailing``)
attendance attendance.ticket_scanned                        SharedTicketScan         ticket_scans
                                                            (``attendance``)
web        web.page_viewed                                  SharedPageView (``web``) page_views
content    web.content_interacted                           SharedContentInteraction content_interactions
                                                            (``content``)
ads        ads.spend_reported                               SharedAdSpend            ad_spend
                                                            (``adspend``)
========== ================================================ ======================== ================

Who may receive what (the catalogue documents it from this table, :func:`sharing_rows`):

* a **partner** receives a kind only under an agreement naming its event types, projected to the
  agreement's ``allowed_fields``, and, for a kind about a person (``personal``), only for people
  whose consent for the agreement's purpose names that partner; ad spend describes no one, so no
  consent applies, but an agreement is still needed;
* the **venue's own store** receives every kind of its own events, pseudonymized in the venue's
  own domain (``venue:<venue>``, which no agreement can name). Page views and content
  interactions (``MEASURED_TYPES``) of a person without a current consent for any purpose go
  there only, as consent-exempt audience measurement (:data:`MEASUREMENT_SCHEMA`, stream
  ``measurement``, table ``audience_measurement``: per-venue visitor key renewed every calendar
  year, IP truncated, city at most, kept :data:`MEASUREMENT_RETENTION_DAYS` days).

Ticketing carries the order lifecycle: :data:`STATUS_OF_TYPE` gives each record's ``status``,
and :data:`FIELD_SOURCES` where a lifecycle event keeps a field the order schema names
differently (an issued ticket's ``price_minor`` is its ``amount_minor``).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.models import SHARED_EMAIL_CLICK, SHARED_TICKET_ORDER

SHARED_CAMPAIGN_EVENT = "org.techne.partner.SharedCampaignEvent"
SHARED_TICKET_SCAN = "org.techne.partner.SharedTicketScan"
SHARED_PAGE_VIEW = "org.techne.partner.SharedPageView"
SHARED_CONTENT_INTERACTION = "org.techne.partner.SharedContentInteraction"
SHARED_AD_SPEND = "org.techne.partner.SharedAdSpend"
MEASUREMENT_SCHEMA = "org.techne.partner.AudienceMeasurement"


@dataclass(frozen=True)
class Kind:
    """One kind of shareable data (see the module table)."""

    name: str
    stream: str
    schema: str
    table: str
    event_types: tuple[str, ...]
    personal: bool = True
    """About a person: consent-gated for partners, pseudonymized, erasable."""
    label_fr: str = ""
    label_en: str = ""


TICKETING = Kind("ticketing", "ticketing", SHARED_TICKET_ORDER, "ticket_orders",
                 ("ticket.order_placed", "ticket.order_paid", "ticket.issued", "ticket.order_cancelled",
                  "ticket.order_refunded", "ticket.exchanged"),
                 label_fr="Billetterie (cycle de vie des commandes)", label_en="Ticketing (order lifecycle)")
KINDS: tuple[Kind, ...] = (
    TICKETING,
    Kind("clicks", "campaign", SHARED_EMAIL_CLICK, "email_clicks", ("campaign.email_clicked",),
         label_fr="Clics dans les e-mails", label_en="E-mail clicks"),
    Kind("campaign", "mailing", SHARED_CAMPAIGN_EVENT, "campaign_events",
         ("campaign.email_sent", "campaign.email_delivered", "campaign.email_opened", "campaign.email_bounced",
          "campaign.email_unsubscribed"),
         label_fr="Campagnes e-mail (envoi, remise, ouverture, rejet, désabonnement)",
         label_en="E-mail campaigns (sent, delivered, opened, bounced, unsubscribed)"),
    Kind("attendance", "attendance", SHARED_TICKET_SCAN, "ticket_scans", ("attendance.ticket_scanned",),
         label_fr="Fréquentation (contrôles d'accès)", label_en="Attendance (entrance scans)"),
    Kind("web", "web", SHARED_PAGE_VIEW, "page_views", ("web.page_viewed",),
         label_fr="Navigation web", label_en="Web browsing"),
    Kind("content", "content", SHARED_CONTENT_INTERACTION, "content_interactions", ("web.content_interacted",),
         label_fr="Interactions avec les contenus", label_en="Content interactions"),
    Kind("ads", "adspend", SHARED_AD_SPEND, "ad_spend", ("ads.spend_reported",), personal=False,
         label_fr="Dépenses publicitaires", label_en="Ad spend"),
)
KIND_OF_TYPE = {t: k for k in KINDS for t in k.event_types}
STREAM_OF_TYPE = {t: k.stream for t, k in KIND_OF_TYPE.items()}
"""Shareable event type -> its stream (``partner.<id>.<stream>``, ``venue.<venue>.<stream>``)."""
SHARED_SCHEMA_OF_TYPE = {t: k.schema for t, k in KIND_OF_TYPE.items()}
"""Shareable event type -> the partner-facing schema it is shared as."""
KIND_STREAMS = tuple(k.stream for k in KINDS)

MEASURED_TYPES = frozenset({"web.page_viewed", "web.content_interacted"})
"""Event types kept as consent-exempt audience measurement when the person has no consent."""
MEASUREMENT_STREAM = "measurement"
MEASUREMENT_TABLE = "audience_measurement"
MEASUREMENT_RETENTION_DAYS = 760
"""25 months (CNIL: audience measurement data kept at most 25 months)."""
MEASUREMENT_PURPOSE = "audience_measurement"
OWN_PURPOSE = "venue_operations"
"""The ``purpose`` of the venue's own rows (other than exempt measurement, and than web and
content rows kept under a consent, whose purpose is the consented one)."""

STATUS_OF_TYPE = {
    "ticket.order_placed": "placed", "ticket.order_paid": "paid", "ticket.issued": "issued",
    "ticket.order_cancelled": "cancelled", "ticket.order_refunded": "refunded", "ticket.exchanged": "exchanged",
}
"""Ticketing event type -> the lifecycle ``status`` of its shared record."""
FIELD_SOURCES: dict[str, dict[str, str]] = {
    "ticket.issued": {"amount_minor": "price_minor"},
    "ticket.exchanged": {"performance_id": "new_performance_id", "performance_at": "new_performance_at",
                         "amount_minor": "price_difference_minor"},
}
"""Per raw event type, shared field -> the raw field it is read from when the names differ."""
assert set(STATUS_OF_TYPE) == set(TICKETING.event_types)


def venue_domain(venue_id: str) -> str:
    """The venue's own pseudonym domain. Agreement domains match ``[a-z0-9_-]+`` (no colon), and
    partners' default ones start with ``partner:``: no agreement can ever name this one."""
    return f"venue:{venue_id}"


def measurement_domain(venue_id: str, year: int) -> str:
    """The visitor-key domain of a venue's exempt measurement in one calendar year (renewed
    every January: a key lives at most 12 months, within the 13 the CNIL allows)."""
    return f"measurement:{venue_id}:{year}"


def own_agreement_id(venue_id: str) -> str:
    """``agreement_id`` of the venue's own rows (its retention is the venue store's)."""
    return f"venue:{venue_id}"


def measurement_agreement_id(venue_id: str) -> str:
    """``agreement_id`` of the venue's exempt measurement rows (25-month retention)."""
    return f"measurement:{venue_id}"
