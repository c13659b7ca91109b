"""The web console: pages (templates, static files, page routes) and its REST API; accounts and
roles live in `switchboard.panel.auth`."""
