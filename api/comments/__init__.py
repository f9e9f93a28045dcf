"""Comments in GraphQL: threads, replies, moderation, live comment feeds."""
