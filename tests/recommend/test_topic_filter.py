"""The topic filter of search and feeds (SearchFilters.topics), on both backends."""

from __future__ import annotations

from paperfeed.feeds import FeedSort, feed, range_period
from paperfeed.ingest import ingest_file
from paperfeed.sample import sample_path
from paperfeed.search import SearchEngine, SearchMode, SearchOptions
from paperfeed.store import PaperQuery, SearchFilters, Store
from paperfeed.store.recommend import PaperTopic


def test_search_and_feeds_filter_by_topic(store: Store) -> None:
    ingest_file(store, sample_path())
    papers = store.query_papers(PaperQuery())
    pks = {p.id: store.paper_pk(p.id) for p in papers}
    diffusion = [p for p in papers if "diffusion" in p.title.lower()]
    others = [p for p in papers if "diffusion" not in p.title.lower()]
    assert len(diffusion) >= 3
    assert others
    a = store.upsert_topic("ml.a", "Topic A", "papers about diffusion", "ml")
    b = store.upsert_topic("ml.b", "Topic B", "one other paper", "ml")
    labelled_a = diffusion[:3]
    rows = [PaperTopic(int(pks[p.id] or 0), a.id, 0.5) for p in labelled_a]
    rows.append(PaperTopic(int(pks[others[0].id] or 0), b.id, 0.4))
    store.replace_paper_topics([int(v or 0) for v in pks.values()], [a.id, b.id], rows)

    only_a = SearchFilters(topics=("ml.a",))
    assert only_a.active
    assert sorted(store.filter_pks(only_a)) == sorted(pks[p.id] for p in labelled_a)
    either = SearchFilters(topics=("ml.a", "ml.b"))
    assert len(store.filter_pks(either)) == 4
    assert store.filter_pks(SearchFilters(topics=("ml.none",))) == []

    # Keyword search: "diffusion" matches many papers, the filter keeps topic A's.
    engine = SearchEngine(store)
    hits = engine.search(
        "diffusion", SearchOptions(mode=SearchMode.KEYWORD, limit=50, filters=only_a)
    ).hits
    assert sorted(h.paper.id for h in hits) == sorted(p.id for p in labelled_a)
    unfiltered = engine.search("diffusion", SearchOptions(mode=SearchMode.KEYWORD, limit=50))
    assert len(unfiltered.hits) > len(hits)

    # A feed over every feed day, filtered by topic B: its one paper (when it was listed).
    days = store.feed_dates()
    page = feed(store, range_period(days[0], days[-1]), sort=FeedSort.DATE, filters=either)
    assert {e.paper.id for e in page.entries} <= {p.id for p in [*labelled_a, others[0]]}
    assert page.total == len({e.paper.id for e in page.entries}) > 0
