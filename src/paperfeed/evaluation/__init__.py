"""Built-in evaluation: BEIR-format retrieval benchmarks (``paperfeed eval``)."""
