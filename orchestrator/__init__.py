"""orchestrator: a daemon that turns a folder of tuning-job files into Gemini tuned models.

Importing the package runs nothing; the entry points are ``orchestrator.__main__:main``
(the ``orchestrator`` console script, ``python -m orchestrator``) and ``orchestrator.cli:main``.
"""

__version__ = "0.1.0"
