"""What every domain of the GraphQL layer builds on: errors, scalars, global IDs, permissions,
amounts, the connection and keyset paging, the loader machinery."""
