"""Services: cluster."""
