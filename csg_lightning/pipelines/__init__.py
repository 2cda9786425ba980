"""Generation pipelines: models passed in, the caller owns the loop, the scheduler owns the step."""
