"""Tests of accounts: sign-up, log-in, sessions, password hashing."""
