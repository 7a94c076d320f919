"""paperfeed: a self-hosted research-paper feed.

The package is a plain library; the CLI (``paperfeed.cli``) only parses arguments,
calls it, and formats the results.
"""

__version__ = "0.1.0"
