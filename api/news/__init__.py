"""The news graph in GraphQL: articles, bylines, categories, tags."""
