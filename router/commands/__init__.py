"""One module per CLI command (see router/cli.py)."""
