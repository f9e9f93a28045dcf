"""``python -m app``: migrate, seed an empty development database, serve."""

from app import main

main()
