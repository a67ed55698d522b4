"""Persistence: SQLAlchemy Core schema, repositories and the durable outbound queue.

Repository functions (store.inbound, store.outbound, store.receipts) take a Connection
first so several of them compose into one group-committed transaction::

    mo_id, new = await store.write(lambda c: inbound.insert_mo(c, ..., now=now))
"""

from store.db import StoreConfigError, StoreUnavailable, default_database_url, make_engine
from store.store import Store
from store.writer import GroupCommitWriter

__all__ = ["GroupCommitWriter", "Store", "StoreConfigError", "StoreUnavailable",
           "default_database_url", "make_engine"]
