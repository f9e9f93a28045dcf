"""Tests of real time: subscriptions, fan-out, the reference client, scale-out."""
