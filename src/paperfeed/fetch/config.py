"""The settings of the live sources: where they are, how politely to ask, and the schedule.

They are read from the ``[fetch]`` and ``[fetch.schedule]`` tables of ``paperfeed.toml`` in
the data directory (or the file ``PAPERFEED_CONFIG`` names). Every key is optional; the
defaults are the real endpoints and arXiv's documented politeness (one request every
3 seconds). Tests point the URLs at a server on loopback and shrink the delays. Unknown
keys are refused with the list of valid ones, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperfeed.errors import PaperfeedError
from paperfeed.settings import Settings

CONFIG_FILENAME = "paperfeed.toml"
SCHEDULE_SOURCES = ("arxiv", "arxiv-rss", "oai", "hf-daily")
OAI_METADATA = ("arXiv", "arXivRaw")
# arXiv's own taxonomy: cs.CL, math.AG, hep-th, cond-mat.stat-mech, ...
ARXIV_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")


class ConfigError(PaperfeedError):
    """The settings file is unreadable or holds a value paperfeed cannot use."""


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """What the daily scheduled fetch does (``paperfeed fetch --scheduled`` / ``serve``)."""

    enabled: bool = True
    time: dt.time = dt.time(6, 0)  # local time of day
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    oai_sets: tuple[str, ...] = ()
    oai_metadata: str = "arXiv"
    embed: bool = True

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.sources)


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Endpoints, politeness and paging of the live sources (see docs/fetch.md)."""

    contact: str = ""  # an e-mail address put in the User-Agent, as arXiv asks
    min_interval: float = 3.0  # seconds between two requests to one host
    max_interval: float = 120.0  # the slowest the client gets after throttling
    timeout: float = 30.0  # seconds to connect, and between two bytes of a response
    max_retries: int = 5  # per request, for server errors, timeouts and broken bodies
    backoff_base: float = 3.0  # first retry waits about this long, doubling after
    backoff_max: float = 300.0
    max_throttle_wait: float = 3600.0  # total wait a run accepts from 429/503 answers
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_rss_url: str = "https://rss.arxiv.org/atom"
    oai_url: str = "https://export.arxiv.org/oai2"
    hf_daily_url: str = "https://huggingface.co/api/daily_papers"
    arxiv_page_size: int = 200
    arxiv_days: int = 3  # window of an arxiv fetch that has no --since and no memory
    hf_page_size: int = 100
    hf_days: int = 2  # days a scheduled hf-daily run fetches again (upvotes move)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


def config_path(settings: Settings) -> Path:
    env = os.environ.get("PAPERFEED_CONFIG")
    return Path(env).expanduser() if env else settings.data_dir / CONFIG_FILENAME


def load_config(settings: Settings) -> FetchConfig:
    """The fetch settings of a data directory (defaults when there is no settings file)."""
    path = config_path(settings)
    if not path.exists():
        return FetchConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the settings: {exc}") from None
    fetch = data.get("fetch", {})
    if not isinstance(fetch, dict):
        raise ConfigError(f"{path}: [fetch] must be a table")
    return config_from_dict(fetch, where=str(path))


def config_from_dict(table: dict[str, Any], *, where: str = "settings") -> FetchConfig:
    """Build a FetchConfig from the ``[fetch]`` table (``schedule`` a nested table)."""
    values = dict(table)
    schedule_table = values.pop("schedule", {})
    if not isinstance(schedule_table, dict):
        raise ConfigError(f"{where}: [fetch.schedule] must be a table")
    kwargs = _typed_fields(FetchConfig, values, f"{where} [fetch]", skip={"schedule"})
    config = FetchConfig(**kwargs, schedule=_schedule(schedule_table, where))
    _check(config, where)
    return config


def _typed_fields(
    cls: type[Any], values: dict[str, Any], where: str, *, skip: set[str]
) -> dict[str, Any]:
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    out: dict[str, Any] = {}
    for key, value in values.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; valid ones: {', '.join(sorted(known))}"
            )
        default = f.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"{where}: {key} = {value!r} is not a {type(default).__name__}")
        out[key] = value
    return out


def _schedule(table: dict[str, Any], where: str) -> ScheduleConfig:
    place = f"{where} [fetch.schedule]"
    values = dict(table)
    time_value = values.pop("time", None)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("sources", "categories", "oai_sets"):
        if key in values:
            raw = values.pop(key)
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                raise ConfigError(f"{place}: {key} must be a list of strings")
            lists[key] = tuple(raw)
    kwargs = _typed_fields(
        ScheduleConfig, values, place, skip={"time", "sources", "categories", "oai_sets"}
    )
    at = ScheduleConfig().time
    if time_value is not None:
        at = _time_of_day(time_value, place)
    schedule = ScheduleConfig(
        **kwargs,
        time=at,
        sources=lists.get("sources", ()),
        categories=lists.get("categories", ()),
        oai_sets=lists.get("oai_sets", ()),
    )
    unknown = [s for s in schedule.sources if s not in SCHEDULE_SOURCES]
    if unknown:
        raise ConfigError(
            f"{place}: unknown source {unknown[0]!r}; choose from {', '.join(SCHEDULE_SOURCES)}"
        )
    if schedule.oai_metadata not in OAI_METADATA:
        raise ConfigError(f"{place}: oai_metadata must be one of {', '.join(OAI_METADATA)}")
    bad = [c for c in schedule.categories if not ARXIV_CATEGORY.match(c)]
    if bad:
        raise ConfigError(f"{place}: invalid arXiv category {bad[0]!r} (e.g. cs.CL, hep-th)")
    if {"arxiv", "arxiv-rss"} & set(schedule.sources) and not schedule.categories:
        raise ConfigError(f'{place}: the arxiv sources need categories = ["cs.CL", ...]')
    return schedule


def _time_of_day(value: object, place: str) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(x) for x in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return dt.time(hours, minutes)
    raise ConfigError(f'{place}: time = {value!r}: use "HH:MM" (24-hour, local time)')


def _check(config: FetchConfig, where: str) -> None:
    place = f"{where} [fetch]"
    positive = {
        "timeout": config.timeout,
        "arxiv_page_size": config.arxiv_page_size,
        "hf_page_size": config.hf_page_size,
        "arxiv_days": config.arxiv_days,
        "hf_days": config.hf_days,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{place}: {key} must be greater than 0")
    not_negative = {
        "min_interval": config.min_interval,
        "max_retries": config.max_retries,
        "backoff_base": config.backoff_base,
        "backoff_max": config.backoff_max,
        "max_throttle_wait": config.max_throttle_wait,
    }
    for key, value in not_negative.items():
        if value < 0:
            raise ConfigError(f"{place}: {key} must not be negative")
    if config.max_interval < config.min_interval:
        raise ConfigError(f"{place}: max_interval must be at least min_interval")
    if config.arxiv_page_size > 2000:
        raise ConfigError(f"{place}: arxiv_page_size is at most 2000 (arXiv's limit)")
    for key in ("arxiv_api_url", "arxiv_rss_url", "oai_url", "hf_daily_url"):
        url = getattr(config, key)
        if not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"{place}: {key} = {url!r} is not an http(s) URL")
