"""The forms of job file a daemon takes: its tuning service's, chosen once from the settings.

The one place that maps ``[api] backend`` to a job-file parser, so that the intake and ``orchestrator
submit`` never ask which service runs the jobs: the Gemini API takes the tutorial's form
(:func:`orchestrator.spec.parse_job`); Vertex AI takes Vertex job files and converts tutorial-format ones
(:class:`orchestrator.vertex.jobfile.VertexJobParser`, with ``[vertex] base_model``).
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.config import Backend, Settings
from orchestrator.spec import JobFileParser, parse_job
from orchestrator.vertex.jobfile import VertexJobParser


def job_file_parser(settings: Settings) -> JobFileParser:
    """The parser of the job files the configured tuning service takes."""
    parsers: Mapping[Backend, JobFileParser] = {
        "gemini": parse_job,
        "vertex": VertexJobParser(settings.vertex.base_model or None),
    }
    return parsers[settings.api.backend]
