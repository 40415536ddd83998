"""The trusted judge: rubric tests, numeric comparison, accuracy, timing."""
