"""`python -m messaging_whatsapp.cli`."""

from messaging_whatsapp.cli.app import main

main()
