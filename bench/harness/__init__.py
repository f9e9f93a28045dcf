"""What the benchmarks share: servers, databases, the GraphQL client side, figures and results.

Nothing here imports the project: the app under test runs as a subprocess from ``--app-root``
(``app:create_app``, ``app.prepare_database``), so one bench can measure two trees.
"""
