"""Test-only vendor credentials and web sites, handed to the session gateway (tests/conftest.py)."""

from __future__ import annotations

import json

HELLOASSO_KEY = "ha-test-signature-key-0123456789"
SECUTIX_BASIC = "secutix-push:s3cr3t-pass"
SECUTIX_API_KEY = "stx-test-api-key-abcdef"
BILLETWEB = "bw-user:bw-key-0123"
WEEZEVENT = "wz-api-key-0123:wz-token-4567"
SITE_KEY = "site_lieu_unique_test"
SITE_ORIGIN = "https://www.lelieuunique.test"
SOURCE_SECRETS = {"lieu-unique": {"helloasso": [HELLOASSO_KEY]},
                  "opera-lyon": {"secutix": [SECUTIX_BASIC, SECUTIX_API_KEY]},
                  "mixt": {"billetweb": [BILLETWEB]}, "gemeaux": {"weezevent": [WEEZEVENT]}}
WEB_SITES = {SITE_KEY: {"venue": "lieu-unique", "origins": [SITE_ORIGIN], "id": 7}}  # 7: its numeric Matomo id
PRODUCER_ENV = {"TECHNE_SOURCE_SECRETS": json.dumps(SOURCE_SECRETS), "TECHNE_WEB_SITES": json.dumps(WEB_SITES)}
