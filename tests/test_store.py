"""The store, on both backends (the `store` fixture below runs each test on SQLite and on
PostgreSQL); tests of one backend's own machinery say so in their names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from paperfeed.errors import StoreError
from paperfeed.index.keyword_query import parse_query
from paperfeed.model import ListingEntry, new_paper
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, IncomingRejection, PaperQuery, Store, open_store
from paperfeed.store.migrations import load_migrations
from paperfeed.store.sqlite.store import MIGRATIONS_PACKAGE
from tests.pg_server import PgServer

PG_MIGRATIONS_PACKAGE = "paperfeed.store.postgres.migrations"


def titles_matching(store: Store, word: str, limit: int = 10) -> list[str]:
    found = store.keyword_search(parse_query(f'"{word}"'), limit=limit)
    papers = store.papers_by_pk([pk for pk, _ in found])
    return [papers[pk].title for pk, _ in found]


def rec(entry: ListingEntry | None = None, **kw: object) -> IncomingRecord:
    return IncomingRecord(new_paper(**kw), entry)  # type: ignore[arg-type]


def test_sqlite_open_applies_all_migrations_and_is_wal(
    sqlite_store: Store, settings: Settings
) -> None:
    assert sqlite_store.schema_version() == len(load_migrations(MIGRATIONS_PACKAGE))
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_sqlite_open_without_create_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="paperfeed init"):
        open_store(Settings.resolve(tmp_path / "nowhere"), create=False)


def test_sqlite_migrations_upgrade_an_old_database(settings: Settings) -> None:
    """A store made by an older version (only migration 1) opens, upgrades, keeps its data."""
    settings.data_dir.mkdir(parents=True)
    first = load_migrations(MIGRATIONS_PACKAGE)[0]
    conn = sqlite3.connect(settings.db_path)
    conn.executescript(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL);"
        + first.sql
        + "INSERT INTO schema_migrations VALUES (1, 'papers', '2026-01-01T00:00:00');"
        "INSERT INTO papers (id, title, abstract, first_seen, changed_at, content_hash)"
        " VALUES ('title:0123456789abcdef', 'An Old Paper About Graphs', 'Graph things.',"
        " '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'x');"
        "INSERT INTO paper_keys VALUES ('title:0123456789abcdef', 1);"
    )
    conn.close()
    with open_store(settings) as store:
        assert store.schema_version() == len(load_migrations(MIGRATIONS_PACKAGE))
        paper = store.get_paper("title:0123456789abcdef")
        assert paper is not None
        assert paper.title == "An Old Paper About Graphs"
        # The keyword index added by a later migration covers the old rows too.
        assert store.keyword_index_pending() == 1
        assert store.refresh_keyword_index() == 1
        assert titles_matching(store, "graphs") == [paper.title]
        assert store.stats().appearances == 0


def test_sqlite_newer_schema_is_refused(settings: Settings) -> None:
    with open_store(settings) as store:
        version = store.schema_version()
    conn = sqlite3.connect(settings.db_path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', 'x')", (version + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this paperfeed"):
        open_store(settings)


def test_sqlite_not_a_database_is_a_clear_error(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    settings.db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(settings)


def test_same_paper_from_two_sources_is_one(store: Store) -> None:
    r1 = store.write_batch(
        [
            rec(
                ListingEntry("page-1", dt.date(2026, 3, 13), 1),
                title="SpaRP: Fast 3D Object Reconstruction",
                abstract="short",
                source="listing",
            )
        ],
        [],
    )
    assert (r1.added, r1.appearances) == (1, 1)
    r2 = store.write_batch(
        [
            rec(
                title="SpaRP: fast 3D object reconstruction.",
                abstract="a longer abstract from arXiv",
                arxiv_id="2408.10195v1",
                authors=["Chao Xu", "Ang Li"],
                source="arxiv-atom",
            )
        ],
        [],
    )
    assert (r2.added, r2.merged) == (0, 1)
    assert store.stats().papers == 1
    paper = store.get_paper("2408.10195")
    assert paper is not None
    assert paper.id == "2408.10195"
    assert paper.sources == ("listing", "arxiv-atom")
    assert paper.abstract == "a longer abstract from arXiv"
    # The old title-hash id, any arXiv spelling and the URL still resolve.
    old_id = new_paper(title="SpaRP: Fast 3D Object Reconstruction").id
    for alias in (old_id, "arXiv:2408.10195v1", "https://arxiv.org/abs/2408.10195"):
        found = store.get_paper(alias)
        assert found is not None
        assert found.id == "2408.10195"
    # Its appearance followed it.
    assert [a.paper_id for a in store.appearances("2408.10195")] == ["2408.10195"]


def test_rewriting_the_same_batch_changes_nothing(store: Store) -> None:
    batch = [
        rec(ListingEntry("p", dt.date(2026, 3, 13), i), title=f"Paper {i}", source="listing")
        for i in range(1, 6)
    ]
    first = store.write_batch(batch, [])
    assert (first.added, first.appearances) == (5, 5)
    again = store.write_batch(batch, [])
    assert (again.added, again.merged, again.unchanged, again.appearances) == (0, 0, 5, 0)


def test_same_title_different_arxiv_ids_stay_apart(store: Store) -> None:
    store.write_batch(
        [
            rec(title="Introduction", arxiv_id="2301.00001", source="a"),
            rec(title="Introduction", arxiv_id="2301.00002", source="a"),
            rec(title="Introduction", source="b"),
        ],
        [],
    )
    assert store.stats().papers == 2


def test_title_only_duplicates_get_distinct_ids(store: Store) -> None:
    store.write_batch([rec(title="Survey", doi="10.1000/a", source="a")], [])
    store.write_batch([rec(title="Survey", doi="10.1000/b", source="a")], [])
    ids = {p.id for p in store.query_papers(PaperQuery())}
    assert ids == {"doi:10.1000/a", "doi:10.1000/b"}


def test_quarantine_is_idempotent(store: Store) -> None:
    bad = IncomingRejection("csv", "x.csv", "/tmp/x.csv", "line 3", "missing title", "a,b")
    assert store.write_batch([], [bad]).quarantined == 1
    store.write_batch([], [bad])
    assert store.stats().quarantined == 1
    [q] = store.quarantined()
    assert (q.locator, q.reason, q.raw) == ("line 3", "missing title", "a,b")
    assert store.clear_quarantine("x.csv") == 1


def test_feed_queries(store: Store) -> None:
    d1, d2 = dt.date(2026, 3, 13), dt.date(2026, 3, 14)
    store.write_batch(
        [
            rec(ListingEntry("a", d1, 2), title="B paper", source="listing"),
            rec(ListingEntry("a", d1, 1), title="A paper", source="listing"),
            rec(ListingEntry("b", d2, 1), title="C paper", source="listing"),
            rec(ListingEntry("c", d2, 3), title="A paper", source="listing"),
            rec(title="Unlisted", source="bibtex", published=dt.date(2020, 1, 1)),
        ],
        [],
    )
    day1 = store.query_papers(PaperQuery(feed_date=d1))
    assert [p.title for p in day1] == ["A paper", "B paper"]
    both = store.query_papers(PaperQuery(date_from=d1, date_to=d2))
    assert [p.title for p in both] == ["C paper", "A paper", "B paper"]
    assert store.count_papers(PaperQuery(date_from=d1, date_to=d2)) == 3
    assert store.feed_dates() == [d1, d2]
    assert [p.title for p in store.query_papers(PaperQuery(source="bibtex"))] == ["Unlisted"]
    assert store.count_papers(PaperQuery()) == 4
    page = store.query_papers(PaperQuery(limit=2, offset=1))
    assert len(page) == 2
    stats = store.stats()
    assert (stats.papers, stats.appearances, stats.feed_days) == (4, 4, 2)
    assert stats.sources == {"bibtex": 1, "listing": 3}
    assert [p.title for p in store.query_papers(PaperQuery(ids=("A paper", "nope")))] == []


def test_readers_in_threads_while_writing(store: Store) -> None:
    """Readers on their own connections see consistent snapshots during writes."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                n = store.count_papers(PaperQuery())
                assert n % 50 == 0  # batches of 50 land whole or not at all
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for b in range(20):
        store.write_batch([rec(title=f"Paper {b}-{i}", source="x") for i in range(50)], [])
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert store.count_papers(PaperQuery()) == 1000


def test_keyword_search_weights_titles(store: Store) -> None:
    store.write_batch(
        [
            rec(title="Diffusion models for images", abstract="We study generation.", source="x"),
            rec(title="A study of graphs", abstract="Diffusion on graphs is covered.", source="x"),
        ],
        [],
    )
    assert titles_matching(store, "diffusion") == []  # written, not yet indexed
    assert store.refresh_keyword_index() == 2
    assert store.keyword_index_pending() == 0
    assert titles_matching(store, "diffusion") == [
        "Diffusion models for images",
        "A study of graphs",
    ]


def test_keyword_index_follows_updates_and_resumes(store: Store) -> None:
    store.write_batch([rec(title="Old words here", source="x")], [])
    store.refresh_keyword_index()
    store.write_batch(
        [rec(title="Old words here", abstract="fresh vocabulary", source="y")]
        + [rec(title=f"Queued paper {i}", source="y") for i in range(25)],
        [],
    )
    # New papers wait for a refresh (on SQLite the update of an indexed one does too).
    pending = store.keyword_index_pending()
    assert pending in (25, 26)
    seen: list[tuple[int, int]] = []
    indexed = store.refresh_keyword_index(progress=lambda d, t: seen.append((d, t)), batch_size=10)
    assert indexed == pending
    assert seen == [(min(n, pending), pending) for n in range(10, pending + 10, 10)]
    assert titles_matching(store, "vocabulary") == ["Old words here"]
    assert titles_matching(store, "words") == ["Old words here"]  # replaced, not doubled
    assert len(titles_matching(store, "queued", limit=100)) == 25
    assert store.refresh_keyword_index() == 0


def test_sqlite_keyword_index_is_rebuilt_when_its_files_are_gone(
    sqlite_store: Store, settings: Settings
) -> None:
    sqlite_store.write_batch([rec(title=f"Graph paper {i}", source="x") for i in range(30)], [])
    sqlite_store.refresh_keyword_index()
    sqlite_store.close()
    keyword_dir = settings.db_path.with_name(settings.db_path.name + "-keyword")
    assert (keyword_dir / "paperfeed-keyword.json").is_file()
    for path in keyword_dir.iterdir():
        path.unlink()
    with open_store(settings) as store:
        assert store.keyword_index_pending() == 30
        assert store.refresh_keyword_index() == 30
        assert len(titles_matching(store, "graph", limit=100)) == 30


def test_store_location_and_schema(store: Store, store_settings: Settings) -> None:
    if store_settings.database_url is None:
        assert store.location == str(store_settings.db_path)
        package = MIGRATIONS_PACKAGE
    else:
        assert store.location.startswith("postgresql://")
        assert "@127.0.0.1:" in store.location or "@" in store.location
        package = PG_MIGRATIONS_PACKAGE
    assert store.schema_version() == len(load_migrations(package))


def test_postgres_migrations_mirror_sqlite_ones() -> None:
    """One schema history: the same numbered migrations, under the same names."""
    sqlite = [(m.version, m.name) for m in load_migrations(MIGRATIONS_PACKAGE)]
    postgres = [(m.version, m.name) for m in load_migrations(PG_MIGRATIONS_PACKAGE)]
    assert postgres == sqlite


def test_postgres_open_without_create_names_the_fix(pg_server: PgServer) -> None:
    with pg_server.fresh_database() as url:
        settings = Settings(data_dir=Path("unused"), database_url=url)
        with pytest.raises(StoreError, match="paperfeed init"):
            open_store(settings, create=False)
        with open_store(settings) as store:
            assert store.schema_version() > 0
        with open_store(settings, create=False) as store:
            assert store.stats().papers == 0


def test_postgres_migrations_upgrade_an_old_database(pg_server: PgServer) -> None:
    """A store made by an older version (only migration 1) opens, upgrades, keeps its data."""
    import psycopg

    first = load_migrations(PG_MIGRATIONS_PACKAGE)[0]
    with pg_server.fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                b"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                b" applied_at TIMESTAMPTZ NOT NULL);" + first.sql.encode()
            )
            conn.execute("INSERT INTO schema_migrations VALUES (1, 'papers', now())")
            conn.execute(
                "INSERT INTO papers (id, title, abstract, first_seen, changed_at, content_hash)"
                " VALUES ('title:0123456789abcdef', 'An Old Paper About Graphs', 'Graph things.',"
                " now(), now(), 'x')"
            )
            conn.execute("INSERT INTO paper_keys SELECT 'title:0123456789abcdef', pk FROM papers")
        with open_store(Settings(data_dir=Path("unused"), database_url=url)) as store:
            assert store.schema_version() == len(load_migrations(PG_MIGRATIONS_PACKAGE))
            paper = store.get_paper("title:0123456789abcdef")
            assert paper is not None
            assert paper.title == "An Old Paper About Graphs"
            # The keyword index added by a later migration covers the old rows too.
            assert store.keyword_index_pending() == 1
            assert store.refresh_keyword_index() == 1
            assert titles_matching(store, "graphs") == [paper.title]
            assert store.stats().appearances == 0


def test_postgres_newer_schema_is_refused(pg_server: PgServer) -> None:
    import psycopg

    with pg_server.fresh_database() as url:
        settings = Settings(data_dir=Path("unused"), database_url=url)
        with open_store(settings) as store:
            version = store.schema_version()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, 'future', now())", (version + 1,)
            )
        with pytest.raises(StoreError, match="newer than this paperfeed"):
            open_store(settings)


def test_postgres_unreachable_server_is_a_clear_error(settings: Settings) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://someone:secret@127.0.0.1:{port}/nothing"
    with pytest.raises(StoreError, match="cannot open the PostgreSQL store") as info:
        open_store(dataclasses.replace(settings, database_url=url))
    assert "secret" not in str(info.value)


def test_database_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAPERFEED_DATABASE_URL", "postgresql://u@127.0.0.1:1/db")
    assert Settings.resolve(tmp_path).database_url == "postgresql://u@127.0.0.1:1/db"
    assert Settings.resolve(tmp_path, database_url="postgresql://x/y").database_url == (
        "postgresql://x/y"
    )
    monkeypatch.delenv("PAPERFEED_DATABASE_URL")
    assert Settings.resolve(tmp_path).database_url is None


def test_postgres_concurrent_opens_migrate_once(pg_server: PgServer) -> None:
    """Workers starting together on a new database: the advisory lock applies each
    migration once and every one of them opens."""
    with pg_server.fresh_database() as url:
        settings = Settings(data_dir=Path("unused"), database_url=url)
        errors: list[BaseException] = []
        versions: list[int] = []

        def open_one() -> None:
            try:
                with open_store(settings) as store:
                    versions.append(store.schema_version())
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert versions == [len(load_migrations(PG_MIGRATIONS_PACKAGE))] * 4
