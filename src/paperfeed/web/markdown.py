"""A paper page as Markdown (``/papers/{id}.md``, what ``HfApi.read_paper`` reads)."""

from __future__ import annotations

from paperfeed.model import Appearance, Paper


def _line(text: str) -> str:
    # Markdown control characters at the start of a line would change its meaning.
    return " ".join(text.split())


def paper_markdown(paper: Paper, appearances: list[Appearance]) -> str:
    out = [f"# {_line(paper.title)}", ""]
    facts = []
    if paper.authors:
        facts.append(f"**Authors:** {_line(', '.join(paper.authors))}")
    if paper.published:
        facts.append(f"**Published:** {paper.published.isoformat()}")
    if paper.arxiv_id:
        facts.append(f"**arXiv:** {paper.arxiv_id}")
    if paper.doi:
        facts.append(f"**DOI:** {paper.doi}")
    if paper.categories:
        facts.append(f"**Categories:** {', '.join(paper.categories)}")
    if paper.upvotes is not None:
        facts.append(f"**Upvotes:** {paper.upvotes}")
    out += [f"- {f}" for f in facts]
    if facts:
        out.append("")
    if paper.abstract:
        out += ["## Abstract", "", paper.abstract, ""]
    links = paper.links.as_dict()
    if links:
        out += ["## Links", ""]
        out += [f"- {name}: <{url}>" for name, url in links.items()]
        out.append("")
    days = [a for a in appearances if a.feed_date]
    if days:
        out += ["## Listed on", ""]
        for a in days:
            rank = f" (#{a.rank})" if a.rank else ""
            out.append(f"- {a.feed_date}: {a.listing}{rank}")
        out.append("")
    return "\n".join(out)
