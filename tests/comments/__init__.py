"""Tests of comments: threads, moderation, rendering and XSS."""
