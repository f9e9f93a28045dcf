"""Accounts: passwords, sessions and permissions."""
