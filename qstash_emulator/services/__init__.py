"""The rules of each resource (publishing, messages, dead letters, logs, queues, URL groups,
schedules, flow control, quotas, users and keys), between the HTTP handlers of ``api`` and
the ``store``."""
