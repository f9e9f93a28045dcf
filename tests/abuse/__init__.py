"""Hostile clients and outages: hardening, abuse runs, the database going away."""
