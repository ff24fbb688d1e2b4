"""``python -m farmcredit`` runs the CLI."""

from farmcredit.cli import main

main()
