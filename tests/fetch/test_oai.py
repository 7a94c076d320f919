"""OAI-PMH harvests against the recorded server: token chains, resumption, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from paperfeed.fetch import oai
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.oai import OaiCursor
from paperfeed.store import PaperQuery, Store
from tests.fetch.recorded import FIXTURES, Fault, RecordedUpstream, week_of_papers

RECORDED = FIXTURES / "oai-pmh"


def harvest(store: Store, config: FetchConfig, **kwargs: object) -> oai.FetchReport:
    with PoliteClient(config) as client:
        return oai.harvest(store, client, config, **kwargs)  # type: ignore[arg-type]


def cursor(store: Store, key: str = "cs|arXiv") -> OaiCursor:
    state = store.fetch_state("oai", key)
    assert state is not None
    return OaiCursor.from_json(state.cursor)


def test_a_recorded_resumption_token_chain(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    middle = (
        (RECORDED / "bad-records.xml")
        .read_bytes()
        .replace(
            b"</ListRecords>",
            b'<resumptionToken cursor="1000" completeListSize="2370">6960524|2001</resumptionToken>'
            b"\n</ListRecords>",
        )
    )
    upstream.oai_pages = {
        "": (RECORDED / "listrecords-arXiv-page1.xml").read_bytes(),
        "6960524|1001": middle,
        "6960524|2001": (RECORDED / "listrecords-arXivRaw-last.xml").read_bytes(),
    }
    report = harvest(store, config, set_spec="cs", date_from=dt.date(2008, 11, 1))
    assert report.ok, report.run.error
    tokens = [s.query.get("resumptionToken") for s in upstream.requests_to("/oai2")]
    assert tokens == [None, "6960524|1001", "6960524|2001"]
    first = upstream.requests_to("/oai2")[0].query
    assert first == {
        "verb": "ListRecords",
        "metadataPrefix": "arXiv",
        "set": "cs",
        "from": "2008-11-01",
    }
    assert report.run.pages == 3
    assert report.run.quarantined > 0  # bad-records.xml: quarantined with their reasons
    reasons = {r.reason for r in store.quarantined()}
    assert "missing title" in reasons
    assert all(r.path.startswith(config.oai_url) for r in store.quarantined())
    assert store.get_paper("0704.0001") is not None
    assert report.run.appearances == 0  # a bulk harvest records no feed days
    # Harvest done: the next one starts at the day this one began (the responseDate).
    assert cursor(store) == OaiCursor(next_from=dt.date(2024, 3, 14))


@pytest.fixture
def cs(upstream: RecordedUpstream) -> RecordedUpstream:
    upstream.oai = week_of_papers("cs.CL", dt.date(2024, 3, 8), per_day=30)  # 210 records
    upstream.oai_page_size = 50
    return upstream


def test_an_interrupted_harvest_resumes_from_its_token(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    cs.faults.append(
        Fault(
            "/oai2",
            "status",
            times=99,
            status=500,
            when=lambda q: q.get("resumptionToken", "").endswith("|150"),
        )
    )
    failed = harvest(store, config, set_spec="cs")
    assert failed.run.status == "failed"
    assert failed.run.added == 150
    saved = cursor(store)
    assert (saved.token, saved.records, saved.total) == ("*|150", 150, 210)
    cs.faults.clear()
    cs.seen.clear()
    resumed = harvest(store, config, set_spec="cs")
    assert resumed.ok
    assert [s.query.get("resumptionToken") for s in cs.seen] == ["*|150", "*|200"]
    assert resumed.run.added == 60
    assert resumed.note == "everything, resumed after 150 records"
    assert store.count_papers(PaperQuery()) == 210


def test_the_next_harvest_is_incremental(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    cs.oai_response_date = "2024-03-14T23:00:00Z"
    assert harvest(store, config, set_spec="cs").run.added == 210
    cs.seen.clear()
    again = harvest(store, config, set_spec="cs")
    assert cs.seen[0].query["from"] == "2024-03-14"
    assert (again.run.added, again.run.unchanged) == (0, 30)


def test_an_expired_token_restarts_the_harvest_from_its_from_day(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    store.save_fetch_state(
        "oai",
        "cs|arXiv",
        OaiCursor(harvest_from=dt.date(2024, 3, 8), token="stale|token", records=100).to_json(),
    )
    report = harvest(store, config, set_spec="cs")
    assert report.ok, report.run.error
    assert "expired" in report.note
    queries = [s.query for s in cs.seen]
    assert queries[0] == {"verb": "ListRecords", "resumptionToken": "stale|token"}
    assert queries[1]["from"] == "2024-03-08"
    assert report.run.added == 210


def test_no_records_match_is_a_harvest_of_nothing(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    report = harvest(store, config, set_spec="cs", date_from=dt.date(2030, 1, 1))
    assert report.ok
    assert report.run.added == 0
    assert cursor(store).next_from == dt.date(2024, 3, 15)


def test_other_oai_errors_fail_with_the_repositorys_message(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.oai_pages = {"": (RECORDED / "error-badArgument.xml").read_bytes()}
    report = harvest(store, config, set_spec="cs")
    assert report.run.status == "failed"
    assert "OAI-PMH error badArgument" in (report.run.error or "")


def test_flow_control_and_cut_pages_cost_time_not_records(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    cs.faults += [
        Fault("/oai2", "status", times=2, status=503, retry_after="0"),
        Fault("/oai2", "cut", times=1, when=lambda q: q.get("resumptionToken") == "*|50"),
        Fault("/oai2", "truncate", times=1, when=lambda q: q.get("resumptionToken") == "*|100"),
    ]
    report = harvest(store, config, set_spec="cs")
    assert report.ok, report.run.error
    assert (report.run.added, report.run.quarantined) == (210, 0)
    assert report.run.retries == 4


def test_a_page_that_stays_cut_stops_the_harvest_without_losing_the_token(
    store: Store, cs: RecordedUpstream, config: FetchConfig
) -> None:
    cs.faults.append(
        Fault("/oai2", "cut", times=99, when=lambda q: q.get("resumptionToken") == "*|50")
    )
    report = harvest(store, dataclasses.replace(config, max_retries=2), set_spec="cs")
    assert report.run.status == "failed"
    assert "cut short" in (report.run.error or "")
    assert cursor(store).token == "*|50"  # the next run asks for that page again
    assert store.stats().quarantined == 0
    cs.faults.clear()
    assert harvest(store, config, set_spec="cs").ok
    assert store.count_papers(PaperQuery()) == 210


def test_arguments_are_checked(store: Store, config: FetchConfig) -> None:
    with pytest.raises(FetchError, match="metadata format"):
        harvest(store, config, metadata="oai_dc")
    with pytest.raises(FetchError, match="invalid OAI-PMH set"):
        harvest(store, config, set_spec="cs&verb=Identify")
    assert json.loads(OaiCursor().to_json())["token"] is None
