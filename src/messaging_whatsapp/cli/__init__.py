"""The `messaging-whatsapp` command line: one module per group of commands, the app in `app.py`.

`main` is the console script's entry point (`messaging_whatsapp.cli:main` in pyproject.toml).
"""

from messaging_whatsapp.cli.app import main

__all__ = ["main"]
