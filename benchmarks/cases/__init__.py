"""One module per benchmark case, each with the interface of ``benchmarks.harness.Case``.

The order in which they run (and their numbers in the output) is the registry in run.py.
"""
