"""One module per CLI command (`python -m router COMMAND`); `cli.py` builds the parser.

May import anything in the package; nothing imports commands."""
