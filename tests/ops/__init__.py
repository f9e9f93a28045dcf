"""Operations: housekeeping (and the other parts of running the app in production)."""
