"""Settings read from the environment once, at start-up, as most Django projects do."""

from __future__ import annotations

import os

SECRET_KEY = "example-only"
DEBUG = False
ALLOWED_HOSTS = ["shop.example.com", "testserver"]
ROOT_URLCONF = "shop.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}  # see the README's note before adding one
USE_TZ = True

PUBLIC_URL = "https://shop.example.com"  # where QStash reaches this app in production
QSTASH_TOKEN = os.environ["QSTASH_TOKEN"]
QSTASH_CURRENT_SIGNING_KEY = os.environ["QSTASH_CURRENT_SIGNING_KEY"]
QSTASH_NEXT_SIGNING_KEY = os.environ["QSTASH_NEXT_SIGNING_KEY"]
