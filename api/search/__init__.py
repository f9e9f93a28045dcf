"""Full-text search over articles and markets: the ``search`` root field."""
