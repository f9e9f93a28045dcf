"""Site-wide figures in GraphQL."""
