"""Using the standalone dev server from a script."""
