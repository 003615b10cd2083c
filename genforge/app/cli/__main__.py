"""``python -m genforge.app.cli``: the CLI (the tests start it this way)."""

from genforge.app.cli import main

main()
