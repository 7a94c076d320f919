"""Recommendations that explain themselves, zero-shot topics and the map of the corpus.

- :mod:`~paperfeed.recommend.feedback`: like / dislike / save to a tag; the local user.
- :mod:`~paperfeed.recommend.models`: per-user, per-tag models on the embeddings.
- :mod:`~paperfeed.recommend.trainer`: training when feedback changes (background thread).
- :mod:`~paperfeed.recommend.for_you`: the "for you" list with reasons; the digest hook.
- :mod:`~paperfeed.recommend.topics`: zero-shot topic labels (``taxonomy.json``).
- :mod:`~paperfeed.recommend.projection` / :mod:`~paperfeed.recommend.map_image`: the map.
"""
