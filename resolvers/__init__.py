"""Thin resolvers and the DataLoaders behind them."""
