"""The QStash client and receiver, built once when the app is imported (django-qstash builds
its client the same way), from the settings."""

from __future__ import annotations

import os

from django.conf import settings
from qstash import QStash, Receiver

client = QStash(settings.QSTASH_TOKEN, base_url=os.environ.get("QSTASH_URL"))
receiver = Receiver(settings.QSTASH_CURRENT_SIGNING_KEY, settings.QSTASH_NEXT_SIGNING_KEY)
