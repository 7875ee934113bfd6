"""Tasks people launch from a form (the Jupyter server extension's page, the run browser's
Launch tab): ``discovery`` finds the ``@task`` functions, ``params`` describes their
parameters from type hints and checks submitted values, ``launcher`` runs them away from the
caller."""
