"""Benchmarks run outside pytest: ``python -m bench.article_page``."""
