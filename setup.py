"""Package discovery that pyproject.toml cannot express on its own.

``migrations/`` lives at the top of the repository, where Alembic users look for it, and ships inside
the wheel as ``orchestrator.migrations`` so that ``orchestrator db upgrade`` works from an installed
package. Every ``orchestrator.*`` package is found automatically.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["orchestrator", "orchestrator.*"]),
        "orchestrator.migrations",
        "orchestrator.migrations.versions",
    ],
    package_dir={"orchestrator.migrations": "migrations"},
)
