"""The PostGraphile 5 peer: Agora's reduced article page against PostGraphile's on one database.

``python -m bench.peer`` (``bench/peer/__main__.py``); ``server.mjs`` is the peer's launcher,
``package.json`` and ``package-lock.json`` pin it (``npm ci`` installs ``node_modules`` here,
git-ignored), ``agora.graphql`` and ``peer.graphql`` are the two committed documents.
"""
