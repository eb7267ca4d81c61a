"""The pytest plugin for qstash-emulator."""
