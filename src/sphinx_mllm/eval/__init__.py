"""Evaluation: metrics (pure functions behind a name registry) and, later, benchmark runners."""
