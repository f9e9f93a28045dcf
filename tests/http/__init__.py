"""Tests of GraphQL over HTTP with real npm clients: the spec's audit, SSE, multipart, APQ."""
