"""The GraphQL surface, one folder per domain."""
