"""The newsroom: writing, publishing and archiving articles, and the bylines behind them."""
