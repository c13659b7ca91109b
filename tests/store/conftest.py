"""Store fixtures (see tests/storekit.py)."""

from tests.storekit import BACKENDS, PG_URL, db_url, reset_postgres, settings, store  # noqa: F401
