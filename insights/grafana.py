"""The Grafana dashboard of the insights (``python -m insights.grafana`` writes
deploy/grafana/dashboards/insights.json).

Every panel reads ``<partner>.insights_release`` (:mod:`insights.publish`): the published cells
of the last protected release, never the person-level views, so a dashboard shows exactly what
``techne insights`` shows. The datasource is the ClickHouse plugin
(``grafana-clickhouse-datasource``) with uid :data:`DATASOURCE_UID`, to be provisioned next to
Prometheus with a user that may read ``insights_release`` only.
"""

# ruff: noqa: S608  (dashboard SQL from constants; Grafana substitutes its own variables)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE_UID = "techne-clickhouse"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": DATASOURCE_UID}
OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards" / "insights.json"
RELEASE = "${partner}.insights_release"
SEASON = "season = ${season}"

PANELS: list[tuple[str, str, str, tuple[int, int, int, int]]] = [
    ("Publics partagés entre lieux (personnes)", "table",
     f"SELECT key_a AS lieu_a, key_b AS lieu_b, value AS personnes FROM {RELEASE} "
     f"WHERE insight = 'overlap' AND {SEASON} ORDER BY personnes DESC", (0, 0, 12, 10)),
    ("Spectateurs par département, tous lieux", "barchart",
     f"SELECT key_b AS departement, value AS personnes FROM {RELEASE} "
     f"WHERE insight = 'geography' AND key_a = '*' AND {SEASON} ORDER BY personnes DESC LIMIT 20", (12, 0, 12, 10)),
    ("Fidélité, tous lieux", "bargauge",
     f"SELECT measure AS mesure, value AS personnes FROM {RELEASE} WHERE insight = 'loyalty' AND key_a = '*' "
     f"AND {SEASON} ORDER BY indexOf(['spectators', 'first_time', 'returning', 'freq_1', 'freq_2', 'freq_3-5', "
     "'freq_6+', 'lapsed'], measure)", (0, 10, 12, 10)),
    ("Croisements de disciplines", "table",
     f"SELECT key_a AS discipline_a, key_b AS discipline_b, value AS personnes FROM {RELEASE} "
     f"WHERE insight = 'crossover' AND {SEASON} ORDER BY personnes DESC", (12, 10, 12, 10)),
    ("Délai de réservation (jours)", "table",
     f"SELECT key_a AS discipline, key_b AS tarif, value AS personnes, p25_days, median_days, p75_days "
     f"FROM {RELEASE} WHERE insight = 'lead_time' ORDER BY discipline, tarif", (0, 20, 12, 10)),
    ("Conversion des campagnes e-mail (7 jours)", "table",
     f"SELECT key_a AS lieu, key_b AS campagne, sumIf(value, measure = 'clicked') AS ont_clique, "
     f"sumIf(value, measure = 'converted') AS ont_reserve FROM {RELEASE} WHERE insight = 'conversion' "
     "GROUP BY lieu, campagne ORDER BY lieu, campagne", (12, 20, 12, 10)),
    ("Fréquentation et absences par représentation", "table",
     f"SELECT key_a AS lieu, key_b AS representation, sumIf(value, measure = 'holders') AS detenteurs, "
     f"sumIf(value, measure = 'attended') AS venus, sumIf(value, measure = 'no_show') AS absents "
     f"FROM {RELEASE} WHERE insight = 'attendance' GROUP BY lieu, representation ORDER BY lieu, representation",
     (0, 30, 24, 10)),
    ("Entonnoir des campagnes e-mail (envoi → réservation sous 7 jours)", "table",
     f"SELECT key_a AS lieu, key_b AS campagne, sumIf(value, measure = 'sent') AS envoyes, "
     f"sumIf(value, measure = 'delivered') AS remis, sumIf(value, measure = 'opened') AS ouverts, "
     f"sumIf(value, measure = 'clicked') AS ont_clique, sumIf(value, measure = 'ordered') AS ont_reserve "
     f"FROM {RELEASE} WHERE insight = 'campaign_funnel' GROUP BY lieu, campagne ORDER BY lieu, campagne",
     (0, 40, 24, 10)),
    ("Coût par nouveau spectateur, par canal (premier contact ; dépense en €)", "table",
     "SELECT key_a AS lieu, key_b AS mois, measure AS canal, "
     "if(countIf(insight = 'acquisition') = 0, NULL, sumIf(value, insight = 'acquisition')) AS nouveaux_spectateurs, "
     "round(if(canal = '*', sum(sumIf(value, insight = 'ad_spend')) OVER (PARTITION BY lieu, mois), "
     "sumIf(value, insight = 'ad_spend')) / 100, 2) AS depense_eur, "
     "round(depense_eur / nouveaux_spectateurs, 2) AS cout_par_nouveau_eur "
     f"FROM {RELEASE} WHERE insight IN ('acquisition', 'ad_spend') GROUP BY lieu, mois, canal "
     "ORDER BY lieu, mois, canal = '*' DESC, canal", (0, 50, 24, 10)),
    ("Pages et contenus vus avant le premier achat (30 jours, personnes consentantes)", "table",
     f"SELECT key_a AS lieu, key_b AS type, measure AS page_ou_contenu, value AS personnes FROM {RELEASE} "
     "WHERE insight = 'web_before_purchase' ORDER BY lieu, type, personnes DESC", (0, 60, 24, 10)),
    ("Cellules masquées (protection des petits effectifs)", "table",
     f"SELECT key_a AS observation, sumIf(value, measure = 'cells') AS cellules, "
     f"sumIf(value, measure = 'suppressed') AS masquees, any(k) AS k FROM {RELEASE} "
     "WHERE insight = 'protection' GROUP BY observation ORDER BY observation", (0, 70, 24, 7)),
]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, kind, sql, (x, y, w, h)) in enumerate(PANELS, 1):
        panels.append({
            "id": i, "title": title, "type": kind, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "targets": [{"refId": "A", "datasource": DATASOURCE, "editorType": "sql", "format": 1,
                         "queryType": "table", "rawSql": sql}],
        })
    variables = [
        {"name": "partner", "label": "Partenaire", "type": "custom", "query": "observatoire",
         "current": {"text": "observatoire", "value": "observatoire"}},
        {"name": "season", "label": "Saison (année de début)", "type": "query", "datasource": DATASOURCE,
         "query": f"SELECT DISTINCT season FROM {RELEASE} WHERE season IS NOT NULL ORDER BY season DESC",
         "refresh": 1},
    ]
    return {"uid": "techne-insights", "title": "Techné — observations partagées (publiées, protégées)",
            "tags": ["techne", "insights"], "timezone": "Europe/Paris", "schemaVersion": 39, "editable": False,
            "time": {"from": "now-1y", "to": "now"}, "panels": panels, "templating": {"list": variables}}


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote: {OUT}")
