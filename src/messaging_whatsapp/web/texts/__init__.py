"""The Portuguese (Brazil) translations of the web UI, one catalog per area of the product.

Each module holds PORTUGUESE: the English string the templates and scripts show -> its
translation. `web.i18n` merges them; a test checks every string the pages use has one.
"""
