"""A Flask app that sends e-mails through QStash jobs, delivered via the WSGI mount in tests."""
