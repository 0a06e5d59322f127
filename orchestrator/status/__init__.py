"""The read side for operators: metrics, the HTTP status endpoint, the live watch and loss plots.

Nothing here writes to the database: the daemon's store reports what it commits to
:class:`~orchestrator.status.observed.StoreMetrics`, and everything else reads.
"""
