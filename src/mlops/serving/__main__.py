"""``python -m mlops.serving``: run the serving gateway (see ``--help``)."""

from mlops.serving._server import main

main()
