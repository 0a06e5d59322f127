"""orchestrator: a daemon that turns a folder of tuning-job files into Gemini tuned models.

Importing the package runs nothing; the entry points are ``orchestrator.cli:main`` and the
``orchestrator`` console script.
"""

__version__ = "0.1.0"
