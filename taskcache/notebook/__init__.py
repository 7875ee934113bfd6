"""The IPython shell: ``extension`` (``%load_ext``), ``magics`` (``%%task`` and
``%taskcache``), ``cell`` (one cell: analyse, fingerprint, restore or execute and save) and
``capture`` (what a cell prints and displays, replayed on a hit)."""
