"""Vertex AI ``tuningJobs``: the second tuning service behind the scheduler (vertex-api.md)."""
