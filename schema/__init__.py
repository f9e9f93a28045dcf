"""The GraphQL surface: types, inputs, errors, context and the Schema with its extensions."""
