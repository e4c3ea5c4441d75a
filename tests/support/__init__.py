"""Helpers shared by the tests and the scripts they run (tests/mpi/): nothing here is product code.

pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml) and conftest.py puts it on
``PYTHONPATH``, so test modules and the subprocesses they start both import ``support.*``.
"""
