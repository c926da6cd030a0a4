"""``python -m blase`` runs the CLI."""

from blase.cli import main

main()
