"""A FastAPI job service that publishes with QStash and consumes on a signed webhook."""
