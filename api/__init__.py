"""The GraphQL surface, one folder per domain (as saleor's saleor/graphql/<domain>/)."""
