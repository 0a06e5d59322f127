"""The read side for operators: metrics, the HTTP status endpoint, the live watch and loss plots.

Nothing here writes to the database except through :class:`~orchestrator.status.observed.ObservedStore`,
which is the daemon's own store with liveness and metrics added.
"""
