"""torchgrade in a student's notebook: ``torchgrade.check("W4")`` runs the public rubric."""
