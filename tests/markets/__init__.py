"""Tests of markets: the LMSR math, trading, settlement, idempotency."""
