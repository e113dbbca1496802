"""`python -m upshot` is the `upshot` command."""

from upshot.cli import main

main()
