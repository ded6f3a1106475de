"""Services: lock."""
