"""Accounts in GraphQL: users, roles, sign-up, log-in and sessions."""
