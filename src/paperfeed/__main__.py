"""``python -m paperfeed`` is the ``paperfeed`` command."""

from paperfeed.cli import main

if __name__ == "__main__":
    main()
