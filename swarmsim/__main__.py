"""``python -m swarmsim`` is the ``swarmsim`` command."""

from swarmsim.cli import app

app()
