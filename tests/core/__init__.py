"""Tests of the GraphQL layer's core: schema contract, errors and limits, paging, inputs."""
