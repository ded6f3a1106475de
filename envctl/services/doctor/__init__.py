"""Services: doctor (what every node is made of, and whether it can run envctl's images)."""
