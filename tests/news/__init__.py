"""Tests of the news graph: articles, the article page, the demo data."""
