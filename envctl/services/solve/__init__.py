"""Services: solve."""
