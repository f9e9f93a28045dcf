"""Real time: the websocket subscription server, apart from the GraphQL layer it serves.

- ``endpoint``: the websocket handler (handshake, ``connection_init``, reading and dispatching
  frames); ``operations``: a ``subscribe`` message's document checked, then run once or started;
- ``protocol/``: typed messages and close codes (``messages``), the rules of
  graphql-transport-ws (``transport_ws``) and of the legacy graphql-ws (``legacy_ws``);
- ``fanout/``: connections with bounded queues and one writer each, subscriptions with their
  order and paced replays, groups executed once per event, the hub routing events to them;
- ``sources``: the ``SubscriptionSource`` a subscription field carries in its metadata;
  ``sharing``: which executions may be shared, read from the schema's viewer marks;
- ``ports``: what the app lends it (the schema, contexts, checks, errors, sessions);
- ``brokers/``: events between writers and subscribers, in memory or over Redis;
  ``events``: channel names and event shapes.

It never imports ``api``: the app builds the hub with what the GraphQL layer lends.
"""
