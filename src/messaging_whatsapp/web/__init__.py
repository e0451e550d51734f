"""The web UI: server-rendered pages and the vendored front-end files they load (static/vendor)."""
