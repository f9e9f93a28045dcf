"""``python -m demo``: load the demo data into an empty, migrated database."""

from demo.seed import main

main()
