"""The newsroom's mutations, one per module."""
