"""torchgrade in a student's notebook: the public rubric of a homework, run on the notebook's
own kernel, with the verdicts the TA's grading will give its public items.

    import torchgrade
    torchgrade.check("W4")                # every public item of W4, shown as a table
    torchgrade.check("W4", "gradients")   # only the items whose name or title holds "gradients"

The TA's side (the sandbox, the gradebook, the reports) is the `grader` package and the `grade`
command.
"""

from torchgrade.result import Check
from torchgrade.selfcheck import CheckError, check

__all__ = ["Check", "CheckError", "check"]
