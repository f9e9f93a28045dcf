"""The market maker: pure LMSR math and the services that trade and settle."""
