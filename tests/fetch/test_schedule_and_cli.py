"""Settings, the scheduled run, the scheduler thread, and the CLI commands."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from paperfeed.cli import main
from paperfeed.fetch.config import ConfigError, FetchConfig, ScheduleConfig, load_config
from paperfeed.fetch.schedule import (
    FetchScheduler,
    last_scheduled_run,
    next_run_time,
    run_scheduled,
)
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, Store, open_store
from tests.fetch.conftest import write_settings
from tests.fetch.recorded import Fault, RecordedUpstream, RunningServer, hf_item, week_of_papers
from tests.network_guard import NetworkGuard

TODAY = dt.date.today()


def run(*args: str, data_dir: Path, ok: bool = True) -> Result:
    # --data-dir after the command: PAPERFEED_HOME (set for every test) would otherwise
    # fill the command's own --data-dir and win over the top-level one.
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)])
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result


def recent_week(upstream: RecordedUpstream) -> None:
    upstream.arxiv = week_of_papers("cs.CL", TODAY - dt.timedelta(days=6))
    upstream.hf[TODAY.isoformat()] = [hf_item("2403.00001", TODAY, 1, 9)]


# ---------------------------------------------------------------------------- settings


def test_settings_file_is_read_and_checked(tmp_path: Path) -> None:
    settings = Settings.resolve(tmp_path)
    assert load_config(settings) == FetchConfig()
    (tmp_path / "paperfeed.toml").write_text(
        '[web]\nport = 8000\n[fetch]\ncontact = "me@example.org"\nmin_interval = 5\n'
        '[fetch.schedule]\ntime = "07:45"\nsources = ["arxiv", "hf-daily"]\n'
        'categories = ["cs.CL", "cs.LG"]\n'
    )
    config = load_config(settings)
    assert (config.contact, config.min_interval) == ("me@example.org", 5.0)
    assert config.schedule == ScheduleConfig(
        time=dt.time(7, 45), sources=("arxiv", "hf-daily"), categories=("cs.CL", "cs.LG")
    )
    bad = {
        "[fetch]\nmin_intervall = 3\n": "unknown setting 'min_intervall'; valid ones: ",
        "[fetch]\ntimeout = 'soon'\n": "timeout = 'soon' is not a float",
        "[fetch]\noai_url = 'export.arxiv.org'\n": "is not an http(s) URL",
        "[fetch.schedule]\ntime = '25:00'\n": 'use "HH:MM"',
        "[fetch.schedule]\nsources = ['arxiv']\n": "need categories",
        "[fetch.schedule]\nsources = ['rss']\n": "unknown source 'rss'",
        "[fetch.schedule]\ncategories = ['cs CL']\n": "invalid arXiv category",
        "[fetch\n": "cannot read the settings",
    }
    for text, message in bad.items():
        (tmp_path / "paperfeed.toml").write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_config(settings)


def test_next_run_time() -> None:
    schedule = ScheduleConfig(time=dt.time(6, 30), sources=("hf-daily",))
    morning = dt.datetime(2024, 3, 14, 5, 0)
    assert next_run_time(schedule, None, morning) == dt.datetime(2024, 3, 14, 6, 30)
    late = dt.datetime(2024, 3, 14, 9, 0)
    assert next_run_time(schedule, dt.date(2024, 3, 13), late) == late  # missed: now
    assert next_run_time(schedule, dt.date(2024, 3, 14), late) == dt.datetime(2024, 3, 15, 6, 30)


# ---------------------------------------------------------------------------- scheduled run


def test_a_scheduled_run_fetches_every_source_and_logs_each(
    store: Store, settings: Settings, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    recent_week(upstream)
    upstream.oai = week_of_papers("cs.CL", TODAY - dt.timedelta(days=6), per_day=2, prefix="2401")
    schedule = ScheduleConfig(
        sources=("arxiv", "hf-daily", "oai"), categories=("cs.CL",), oai_sets=("cs",), embed=False
    )
    cfg = dataclasses.replace(config, schedule=schedule, arxiv_days=7, hf_days=1)
    result = run_scheduled(settings, store, config=cfg)
    assert result.ok, [r.run.error for r in result.reports]
    assert [(r.run.source, r.run.query) for r in result.reports] == [
        ("arxiv", "cat:cs.CL"),
        ("hf-daily", f"date={TODAY}"),
        ("oai", "set=cs metadataPrefix=arXiv"),
    ]
    assert store.count_papers(PaperQuery()) == 140 + 14
    assert store.keyword_index_pending() == 0
    assert last_scheduled_run(store) == TODAY
    assert len(store.fetch_runs()) == 3


def test_one_failing_source_does_not_stop_the_others(
    store: Store, settings: Settings, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    recent_week(upstream)
    upstream.faults.append(Fault("/api/daily_papers", "status", times=99, status=500))
    schedule = ScheduleConfig(sources=("hf-daily", "arxiv"), categories=("cs.CL",), embed=False)
    cfg = dataclasses.replace(config, schedule=schedule, arxiv_days=7, hf_days=1)
    result = run_scheduled(settings, store, config=cfg)
    assert not result.ok
    assert [r.run.status for r in result.reports] == ["failed", "done"]
    assert store.count_papers(PaperQuery()) == 140


def test_the_scheduler_thread_runs_once_a_day_and_stops(
    store: Store, settings: Settings, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    recent_week(upstream)
    schedule = ScheduleConfig(time=dt.time(6, 0), sources=("hf-daily",), embed=False)
    cfg = dataclasses.replace(config, schedule=schedule, hf_days=1)
    clock = {"now": dt.datetime.combine(TODAY, dt.time(5, 0))}
    scheduler = FetchScheduler(
        settings, store, config=cfg, poll_seconds=0.02, now=lambda: clock["now"]
    )
    scheduler.start()
    try:
        time.sleep(0.2)
        assert scheduler.runs == 0  # before 06:00: not due
        assert scheduler.next_run() == dt.datetime.combine(TODAY, dt.time(6, 0))
        clock["now"] = dt.datetime.combine(TODAY, dt.time(6, 1))
        deadline = time.monotonic() + 10
        while scheduler.last_result is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert scheduler.runs == 1  # once that day, however often it checks
        assert scheduler.last_result is not None
        assert scheduler.last_result.ok
        assert scheduler.last_error is None
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert store.count_papers(PaperQuery()) == 1


def test_stopping_the_scheduler_interrupts_a_long_wait(
    store: Store, settings: Settings, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.faults.append(
        Fault("/api/daily_papers", "status", times=99, status=429, retry_after="60")
    )
    schedule = ScheduleConfig(time=dt.time(0, 0), sources=("hf-daily",), embed=False)
    cfg = dataclasses.replace(config, schedule=schedule, hf_days=1, max_throttle_wait=1000)
    scheduler = FetchScheduler(settings, store, config=cfg, poll_seconds=0.02)
    scheduler.start()
    deadline = time.monotonic() + 10
    while not upstream.seen and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - started < 5
    assert not scheduler.running
    assert store.fetch_runs()[0].status == "interrupted"


# ---------------------------------------------------------------------------- CLI


def test_cli_fetch_arxiv_rerun_and_sources(
    tmp_path: Path, upstream: RecordedUpstream, server: RunningServer
) -> None:
    recent_week(upstream)
    data = tmp_path / "pf"
    write_settings(data, server.url)
    first = json.loads(
        run(
            "fetch",
            "arxiv",
            "--category",
            "cs.CL",
            "--days",
            "7",
            "--no-embed",
            "--json",
            data_dir=data,
        ).stdout
    )
    assert first["ok"]
    assert first["runs"][0]["added"] == 140
    again = run("fetch", "arxiv", "--category", "cs.CL", "--days", "7", "--no-embed", data_dir=data)
    assert "0 added, 0 merged, 140 unchanged" in again.stdout
    info = json.loads(run("sources", "--json", data_dir=data).stdout)
    assert info["endpoints"]["arxiv_api_url"] == f"{server.url}/api/query"
    assert [r["status"] for r in info["runs"]] == ["done", "done"]
    assert info["state"][0]["cursor"]["done_through"] == TODAY.isoformat()
    text = run("sources", data_dir=data).stdout
    assert "done through" in text
    assert "Schedule: none" in text
    stats = json.loads(run("stats", "--json", data_dir=data).stdout)
    assert stats["papers"] == 140
    assert stats["sources"] == {"arxiv-atom": 140}


def test_cli_fetch_scheduled_hf_daily_oai_and_url(
    tmp_path: Path, upstream: RecordedUpstream, server: RunningServer
) -> None:
    recent_week(upstream)
    upstream.oai = week_of_papers("cs.CL", TODAY, days=1, per_day=3, prefix="2401")
    upstream.files["/lib.bib"] = (
        b"@misc{k, title={A Paper Behind a URL}, year={2024}}\n",
        "text/plain",
    )
    data = tmp_path / "pf"
    write_settings(
        data,
        server.url,
        '[fetch.schedule]\nsources = ["hf-daily"]\nembed = false\ntime = "06:00"\n',
    )
    scheduled = json.loads(run("fetch", "--scheduled", "--json", data_dir=data).stdout)
    assert scheduled["ok"]
    assert scheduled["runs"][-1]["query"] == f"date={TODAY}"
    hf = json.loads(run("fetch", "hf-daily", "--date", "today", "--json", data_dir=data).stdout)
    assert hf["runs"][0]["unchanged"] == 1
    harvested = run("fetch", "oai", "--set", "cs", "--no-embed", data_dir=data)
    assert "3 added" in harvested.stdout
    got = json.loads(
        run("fetch", "url", f"{server.url}/lib.bib", "--no-embed", "--json", data_dir=data).stdout
    )
    assert got["runs"][0]["added"] == 1
    text = run("sources", data_dir=data).stdout
    assert "Schedule: daily at 06:00: hf-daily" in text


def test_cli_fetch_embeds_the_new_papers(
    tmp_path: Path, upstream: RecordedUpstream, server: RunningServer
) -> None:
    from paperfeed.index import semantic

    recent_week(upstream)
    data = tmp_path / "pf"
    write_settings(data, server.url)
    with open_store(Settings.resolve(data)) as store:
        semantic.activate(store, "fake")  # the deterministic test encoder, like a real one
    report = json.loads(run("fetch", "hf-daily", "--json", data_dir=data).stdout)
    assert report["runs"][0]["added"] == 1
    assert report["embedded"] == 1
    status = json.loads(run("index", "status", "--json", data_dir=data).stdout)
    assert (status["embedded"], status["pending"]) == (1, 0)


def test_cli_errors_are_one_line(
    tmp_path: Path, upstream: RecordedUpstream, server: RunningServer, network_guard: NetworkGuard
) -> None:
    data = tmp_path / "pf"
    write_settings(data, server.url)
    usage = run("fetch", data_dir=data, ok=False)
    assert usage.exit_code == 2
    assert "choose a source" in usage.stderr
    both = run(
        "fetch",
        "arxiv",
        "--category",
        "cs.CL",
        "--since",
        "2024-01-01",
        "--days",
        "2",
        data_dir=data,
        ok=False,
    )
    assert both.exit_code == 2
    failing = run("fetch", "url", f"{server.url}/missing.bib", data_dir=data, ok=False)
    assert failing.exit_code == 1
    assert failing.stderr.strip().startswith("Error: url ")
    assert "HTTP 404" in failing.stderr
    assert len(failing.stderr.strip().splitlines()) == 1
    scheduled = run("fetch", "--scheduled", data_dir=data, ok=False)
    assert scheduled.exit_code == 1
    assert "no schedule" in scheduled.stderr
    # With the real endpoints and no network: one line naming the host.
    offline = tmp_path / "offline"
    offline.mkdir()
    result = run("fetch", "hf-daily", data_dir=offline, ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: hf-daily date={TODAY}: cannot resolve host 'huggingface.co' "
        "(no network, or a wrong URL?)"
    )
    assert network_guard.attempts == ["getaddrinfo('huggingface.co')"]
    network_guard.attempts.clear()


def test_the_store_opens_with_the_fetch_tables(settings: Settings) -> None:
    with open_store(settings) as store:
        run_ = store.start_fetch_run("arxiv", "cat:cs.CL")
        again = store.start_fetch_run("arxiv", "cat:cs.CL")
        runs = store.fetch_runs()
    assert [r.id for r in runs] == [again.id, run_.id]
    assert [r.status for r in runs] == ["running", "abandoned"]
