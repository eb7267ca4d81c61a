"""Delivering messages: the engine that takes what is due, the ways a request reaches its
destination (network, an app mounted in process, a rewrite), signing, retries and redirects."""
