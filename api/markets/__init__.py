"""Markets in GraphQL: markets, outcomes, trades, positions, quotes, live odds."""
