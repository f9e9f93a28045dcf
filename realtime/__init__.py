"""Real time: the broker, channels and events, and the graphql-transport-ws server."""
