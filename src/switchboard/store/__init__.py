"""Local storage: SQLAlchemy models, repositories and Alembic migrations (run on start-up)."""

from switchboard.store.base import Page
from switchboard.store.calls import AttemptOutcome, CallData, ContactHistory, EventData, OutboxEntry
from switchboard.store.followups import CallbackOutcome, NewCallback
from switchboard.store.catalog import LineSpec, OperatorSpec
from switchboard.store.contacts import NewContact
from switchboard.store.reports import ReportedResult, RetryDecision, RetryPolicy, default_retry_policy
from switchboard.store.store import Store, open_store
from switchboard.store import accounts as _accounts, usage as _usage  # noqa: E402,F401  (the console's tables and index)

__all__ = [
    "AttemptOutcome",
    "CallData",
    "CallbackOutcome",
    "ContactHistory",
    "EventData",
    "LineSpec",
    "NewCallback",
    "NewContact",
    "OperatorSpec",
    "OutboxEntry",
    "Page",
    "ReportedResult",
    "RetryDecision",
    "RetryPolicy",
    "Store",
    "default_retry_policy",
    "open_store",
]
