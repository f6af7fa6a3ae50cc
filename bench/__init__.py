"""Speed figures, kept out of the test suite (shared 2-core machines make timed tests flaky).

Each ``bench/bench_*.py`` is a standalone script printing its figures;
``python -m bench`` (``make bench``) runs them all, one process each.
"""
