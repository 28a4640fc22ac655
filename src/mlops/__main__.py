"""``python -m mlops``: the mlops command line."""

from mlops.cli import main

main()
