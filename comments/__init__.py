"""Comments: rendering and (with accounts) the write path."""
