"""Services: deliver."""
