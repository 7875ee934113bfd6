"""taskcache benchmarks: run them with ``python benchmarks/run.py`` (see run.py).

A regular package, not a namespace one, so that ``benchmarks.*`` always resolves to this
checkout even when another checkout of taskcache is installed in the environment.
"""
