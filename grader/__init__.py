"""torchgrade: grade PyTorch notebook homework by numbers the grader computes itself."""

__version__ = "0.1.0"
