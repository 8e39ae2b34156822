"""Benchmarks of kvision's models; see ``benchmarks/README.md``.

A package so that the accuracy tests (``tests/training/test_accuracy.py``)
and the benchmark script read the same CPU-sized configurations from
:mod:`benchmarks.budgets` instead of keeping two tables in step.
"""
