"""Running an emulator: settings, the Starlette app, serving it on a port, the runtime that
builds and wires every part, the CLI and the in-process ``Emulator``."""
