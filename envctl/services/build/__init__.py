"""Services: build."""
