"""The BibTeX parser: exports of arXiv, Zotero, DBLP and Google Scholar, a hand-kept
BibLaTeX library, every kind of bad entry, and fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from bibtexparser.model import Block
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.ids import find_arxiv_id_in_text, is_arxiv_category
from paperfeed.sources import bibtex as bibtex_module
from paperfeed.sources.base import Parsed, Rejected
from tests.sources.helpers import FIXTURES, run_parser, split

BIB = FIXTURES / "bibtex"


def parse_file(name: str) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("bibtex", (BIB / name).read_bytes()))


def parse_text(text: str) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("bibtex", text.encode("utf-8")))


def by_key(items: list[Parsed]) -> dict[str, Parsed]:
    return {p.locator.split(" ")[1]: p for p in items}


# -- real-world exports ------------------------------------------------------------------


def test_arxiv_export() -> None:
    good, bad = parse_file("arxiv_export.bib")
    assert bad == []
    assert [p.paper.id for p in good] == ["1706.03762", "2106.09685", "hep-th/9711200"]
    first = good[0]
    assert first.locator == "entry vaswani2023attentionneed (line 1)"
    assert first.entry is None
    paper = first.paper
    assert paper.title == "Attention Is All You Need"
    assert paper.authors[:2] == ("Ashish Vaswani", "Noam Shazeer")
    assert len(paper.authors) == 8
    assert paper.categories == ("cs.CL",)
    assert paper.published == dt.date(2023, 1, 1)  # year only: January 1
    assert paper.links.abs == "https://arxiv.org/abs/1706.03762"
    assert paper.sources == ("bibtex",)
    maldacena = good[2].paper
    assert maldacena.arxiv_id == "hep-th/9711200"
    assert maldacena.categories == ("hep-th",)
    assert good[2].locator == "entry maldacena1997largenlimit (line 21)"


def test_zotero_export() -> None:
    good, bad = parse_file("zotero.bib")
    assert bad == []
    papers = {k: p.paper for k, p in by_key(good).items()}
    vaswani = papers["vaswani_attention_2017"]
    assert vaswani.title == "Attention Is All You Need"  # {Is} {All} braces dropped
    assert vaswani.arxiv_id == "1706.03762"
    assert vaswani.published == dt.date(2017, 12, 1)  # month = dec (a macro)
    assert vaswani.abstract.startswith("The dominant sequence transduction models")
    # Zotero's subject keywords are not arXiv categories.
    assert vaswani.categories == ()
    lstm = papers["hochreiter_long_1997"]
    assert lstm.title == "Long Short-Term Memory"
    assert lstm.authors == ("Sepp Hochreiter", "Jürgen Schmidhuber")
    assert lstm.doi == "10.1162/neco.1997.9.8.1735"
    assert lstm.id == "doi:10.1162/neco.1997.9.8.1735"
    assert lstm.published == dt.date(1997, 11, 1)
    book = papers["scholkopf_learning_2002"]
    assert book.authors == ("Bernhard Schölkopf", "Alexander J. Smola")  # Sch{\"o}lkopf
    assert book.title.startswith("Learning with Kernels: Support Vector Machines")
    assert papers["cortes_support-vector_1995"].published == dt.date(1995, 9, 1)


def test_dblp_export() -> None:
    good, bad = parse_file("dblp.bib")
    assert bad == []
    papers = [p.paper for p in good]
    bert, resnet, adam = papers
    assert bert.title == (
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
    )
    assert bert.authors[1] == "Ming-Wei Chang"  # Ming{-}Wei
    assert bert.arxiv_id == "1810.04805"
    assert resnet.doi == "10.1109/cvpr.2016.90"
    assert resnet.arxiv_id is None
    assert resnet.links.abs == "https://doi.org/10.1109/CVPR.2016.90"
    # No eprint field: found from journal = {CoRR}, volume = {abs/1412.6980} and the url.
    assert adam.arxiv_id == "1412.6980"
    assert good[0].locator == "entry DBLP:journals/corr/abs-1810-04805 (line 1)"


def test_google_scholar_export() -> None:
    good, bad = parse_file("google_scholar.bib")
    assert bad == []
    brown, erdos = (p.paper for p in good)
    assert brown.arxiv_id == "2005.14165"  # journal={arXiv preprint arXiv:2005.14165}
    assert "others" not in brown.authors
    assert brown.authors[4] == "Jared D Kaplan"
    assert len(brown.authors) == 10
    assert erdos.authors == ("Paul Erdős", "Alfréd Rényi")
    assert erdos.published == dt.date(1959, 1, 1)
    assert erdos.id.startswith("title:")


def test_handwritten_biblatex_library() -> None:
    good, bad = parse_file("library.bib")
    assert bad == []  # @preamble, @comment, @string and % comments are not records
    papers = {k: p.paper for k, p in by_key(good).items()}
    assert list(papers) == [
        "ho2020denoising",
        "radford2021clip",
        "pedregosa2011scikit",
        "van_der_maaten_2008",
        "costs_and_benefits",
        "unicode_title",
        "nodate",
    ]
    ddpm = papers["ho2020denoising"]
    assert ddpm.arxiv_id == "2006.11239"
    assert ddpm.categories == ("cs.LG",)
    assert ddpm.published == dt.date(2020, 12, 1)
    clip = papers["radford2021clip"]
    assert clip.arxiv_id == "2103.00020"  # eprinttype = {arxiv} (BibLaTeX)
    assert clip.categories == ("cs.CV",)  # eprintclass
    assert clip.published == dt.date(2021, 2, 26)  # date = {2021-02-26}
    assert "learn SOTA image representations" in clip.abstract
    sklearn = papers["pedregosa2011scikit"]
    assert sklearn.title == "Scikit-learn: Machine Learning in Python"
    assert sklearn.published == dt.date(2011, 10, 1)  # month = "10"
    assert sklearn.authors[0] == "F. Pedregosa"
    assert sklearn.links.abs == "https://jmlr.org/papers/v12/pedregosa11a.html"
    tsne = papers["van_der_maaten_2008"]
    assert tsne.authors == ("Laurens van der Maaten", "Geoffrey Hinton")
    assert tsne.published == dt.date(2008, 11, 1)  # month = {November}
    assert tsne.links.pdf is not None
    assert tsne.links.pdf.endswith("vandermaaten08a.pdf")
    assert tsne.links.abs is None


def test_latex_specials_and_accents_are_decoded() -> None:
    good, _ = parse_file("library.bib")
    paper = by_key(good)["costs_and_benefits"].paper
    assert paper.title == (
        "Costs & Benefits of 100% Recall: $5 per query _ a study of "
        "École Montréal's Café Übung – GPT-4"
    )
    assert paper.authors == ("François Chollet", "Google Research")
    # howpublished = {\url{...}} with an underscore kept verbatim (no LaTeX decoding).
    assert paper.links.abs == "https://example.org/papers/costs_and_benefits?id=42"
    assert paper.published == dt.date(2023, 1, 1)  # month = jan # "~15"


def test_utf8_text_and_doi_url() -> None:
    good, _ = parse_file("library.bib")
    papers = by_key(good)
    unicode_paper = papers["unicode_title"].paper
    assert unicode_paper.title == "Ünïcödé títles — written directly in UTF-8: 深度学习"
    assert unicode_paper.authors == ("Łukasz Kaiser", "Zoë Müller")
    assert unicode_paper.doi == "10.1000/xyz_123"  # https://doi.org/... and \_ undone
    nodate = papers["nodate"].paper
    assert nodate.published is None
    assert nodate.authors == ("John Smith Jr.",)


# -- macros, months, dates ---------------------------------------------------------------


def test_string_macros_and_concatenation() -> None:
    good, bad = parse_text(
        """@string{conf = "Proceedings of " # "the Conference"}
@STRING(word = {Macro})
@misc{k1, title = word # { Titles } # "Work", booktitle = conf, year = 2020, month = "feb"}
@misc{k2, title = "Unknown" # nomacro, year = "2020", month = {aug}}
"""
    )
    assert bad == []
    assert [p.paper.title for p in good] == ["Macro Titles Work", "Unknownnomacro"]
    assert [p.paper.published for p in good] == [dt.date(2020, 2, 1), dt.date(2020, 8, 1)]


def test_user_string_overrides_month_macro() -> None:
    good, _ = parse_text('@string{jun = "July"}\n@misc{k, title={T}, year=2020, month=jun}\n')
    assert good[0].paper.published == dt.date(2020, 7, 1)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("year = 2021", dt.date(2021, 1, 1)),
        ("year = {2021}, month = {Sept.}", dt.date(2021, 9, 1)),
        ("year = {2021}, month = {jan--feb}", dt.date(2021, 1, 1)),
        ("year = {2021}, month = 12, day = {24}", dt.date(2021, 12, 24)),
        ("date = {2021-06}", dt.date(2021, 6, 1)),
        ("date = {2021}", dt.date(2021, 1, 1)),
        ("date = {2021-06-03T10:00:00Z}", dt.date(2021, 6, 3)),
        ("date = {2021-06-03/2021-06-05}", dt.date(2021, 6, 3)),
        ("date = {2021-06-03}, year = {1999}", dt.date(2021, 6, 3)),
        ("note = {no date at all}", None),
    ],
)
def test_dates(fields: str, expected: dt.date | None) -> None:
    good, bad = parse_text(f"@article{{k, title = {{T}}, {fields}}}\n")
    assert bad == []
    assert good[0].paper.published == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ("year = {20x1}", "unparsable date in field 'year': '20x1'"),
        ("year = {in press}", "unparsable date in field 'year'"),
        ("year = {2021}, month = {Smarch}", "unparsable date in field 'month': 'Smarch'"),
        ("year = {2021}, month = {13}", "unparsable date in field 'month'"),
        ("year = {2021}, month = {2}, day = {30}", "unparsable date in fields"),
        ("year = {2021}, day = {x}", "unparsable date in field 'day'"),
        ("date = {yesterday}", "in field 'date'"),
        ("date = {20A3R1}", "unparsable date in field 'date'"),
        ("date = {2021-02-29}", "unparsable date in field 'date'"),
    ],
)
def test_bad_dates_are_rejected(fields: str, reason: str) -> None:
    good, bad = parse_text(f"@article{{k, title = {{T}}, {fields}}}\n@misc{{ok, title={{Ok}}}}\n")
    assert [p.paper.title for p in good] == ["Ok"]
    assert len(bad) == 1
    assert reason in bad[0].reason
    assert bad[0].locator == "entry k (line 1)"


# -- identifiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "arxiv_id"),
    [
        ("eprint = {2301.12345v2}, archivePrefix = {arXiv}", "2301.12345"),
        ("eprint = {arXiv:2301.12345}", "2301.12345"),
        ("eprint = {1706.03762 [cs.CL]}, eprinttype = {arxiv}", "1706.03762"),
        ("url = {https://arxiv.org/pdf/2301.12345v1.pdf}", "2301.12345"),
        ("doi = {10.48550/arXiv.2301.12345}", "2301.12345"),
        ("journal = {arXiv preprint arXiv:2301.12345}", "2301.12345"),
        ("journal = {ArXiv}, note = {arXiv: math.AG/0601001}", "math/0601001"),
        ("journal = {CoRR}, volume = {abs/2301.12345}", "2301.12345"),
        ("eprint = {12345678}, archivePrefix = {PubMed}", None),
        ("url = {https://example.org/2301.12345}", None),
    ],
)
def test_arxiv_ids(fields: str, arxiv_id: str | None) -> None:
    good, bad = parse_text(f"@misc{{k, title = {{T}}, {fields}}}\n")
    assert bad == []
    assert good[0].paper.arxiv_id == arxiv_id


def test_primary_class_must_be_an_arxiv_category() -> None:
    good, _ = parse_text(
        "@misc{a, title={A}, eprint={2301.12345}, primaryClass={cs}}\n"
        "@misc{b, title={B}, eprint={2301.12346}, primaryClass={astro-ph.CO}}\n"
    )
    assert [p.paper.categories for p in good] == [(), ("astro-ph.CO",)]


def test_helpers() -> None:
    assert is_arxiv_category("cs.CL")
    assert is_arxiv_category("cond-mat.mes-hall")
    assert is_arxiv_category("quant-ph")
    assert not is_arxiv_category("node.js")
    assert not is_arxiv_category("cs")
    assert find_arxiv_id_in_text("see arXiv:1706.03762v5 [cs]") == "1706.03762v5"
    assert find_arxiv_id_in_text("arXiv is great, 2017") is None


# -- bad entries -------------------------------------------------------------------------


def test_malformed_fixture_keeps_every_good_neighbour() -> None:
    good, bad = parse_file("malformed.bib")
    assert [p.locator for p in good] == [
        "entry good_before (line 1)",
        "entry good_after (line 13)",
        "entry good_last (line 61)",
    ]
    assert good[2].paper.authors == ("Zoë Müller",)
    reasons = {r.locator: r.reason for r in bad}
    assert list(reasons) == [
        "entry unbalanced (line 7)",
        "entry no_title (line 19)",
        "entry empty_title (line 24)",
        "entry broken_utf8 (line 29)",
        "entry bad_year (line 34)",
        "entry bad_month (line 39)",
        "entry bad_date (line 45)",
        "entry missing_comma (line 50)",
        "entry bad_eprint (line 55)",
    ]
    assert reasons["entry unbalanced (line 7)"].startswith("malformed entry, unbalanced braces")
    assert reasons["entry no_title (line 19)"] == "missing title"
    assert reasons["entry empty_title (line 24)"] == "missing title"
    assert reasons["entry broken_utf8 (line 29)"].startswith(
        "broken encoding: entry is not valid UTF-8"
    )
    assert "missing comma" in reasons["entry missing_comma (line 50)"]
    assert "unparsable arXiv id in field 'eprint'" in reasons["entry bad_eprint (line 55)"]
    broken = next(r for r in bad if r.locator == "entry broken_utf8 (line 29)")
    assert "Caf\ufffd au lait" in broken.raw  # the bad byte shown, storable as text
    assert next(r for r in bad if "unbalanced" in r.locator).raw.startswith("@article{unbalanced,")


def test_unbalanced_brace_in_last_entry() -> None:
    good, bad = parse_text("@misc{a, title={A}}\n@misc{b, title={B\n  year = {2020}\n}\n")
    assert [p.paper.title for p in good] == ["A"]
    assert [r.locator for r in bad] == ["entry b (line 2)"]


def test_unbalanced_brace_before_an_indented_entry() -> None:
    good, bad = parse_text("@misc{a, title={A\n}\n   @misc{b, title={B}}\n")
    assert [p.paper.title for p in good] == ["B"]
    assert [r.locator for r in bad] == ["entry a (line 1)"]


def test_entry_without_key_is_located_by_position() -> None:
    good, bad = parse_text("@misc{ok, title={Ok}}\n@misc{, title={}}\n")
    assert [p.paper.title for p in good] == ["Ok"]
    assert bad[0].locator == "entry 2 (line 2)"
    assert bad[0].reason == "missing title"


def test_duplicate_keys_and_fields_are_kept_like_bibtex() -> None:
    good, bad = parse_text(
        "@misc{same, title={First}}\n@misc{same, title={Second}}\n"
        "@misc{dupfield, title={One}, title={Two}}\n"
    )
    assert bad == []
    assert [p.paper.title for p in good] == ["First", "Second", "One"]
    assert [p.locator for p in good] == [
        "entry same (line 1)",
        "entry same (line 2)",
        "entry dupfield (line 3)",
    ]


def test_broken_string_macro_rejects_only_its_users() -> None:
    data = b'@string{bad = "Caf\xe9"}\n@misc{a, title = bad}\n@misc{b, title = {Fine}}\n'
    good, bad = split(run_parser("bibtex", data))
    assert [p.paper.title for p in good] == ["Fine"]
    assert bad[0].locator == "entry a (line 2)"
    assert bad[0].reason.startswith("broken encoding: field 'title'")


def test_malformed_string_block_is_reported() -> None:
    good, bad = parse_text('@string{oops "no equals sign"}\n@misc{a, title={A}}\n')
    assert [p.paper.title for p in good] == ["A"]
    assert bad[0].locator == "@string (line 1)"
    assert bad[0].reason.startswith("malformed @string")


def test_comments_preambles_and_containers_are_not_records() -> None:
    good, bad = parse_text(
        "@comment{anything {at} all}\n@preamble{{\\newcommand{\\x}{y}}}\n"
        "@xdata{shared, publisher = {P}}\n@set{group, entryset = {a,b}}\n"
        "@misc{a, title={Only Record}}\n"
    )
    assert bad == []
    assert [p.paper.title for p in good] == ["Only Record"]


def test_crlf_line_endings_and_bom() -> None:
    data = "\ufeff@misc{a,\r\n  title = {Windows\r\n  Title},\r\n  year = {2020}\r\n}\r\n"
    good, bad = split(run_parser("bibtex", data.encode("utf-8")))
    assert bad == []
    assert good[0].paper.title == "Windows Title"


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n\n", b"just some prose, no entries\n", b"TY  - JOUR\nTI  - RIS\nER  - \n"],
)
def test_not_bibtex_raises_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="<test>: no BibTeX entries"):
        run_parser("bibtex", data)


def test_only_comments_is_an_empty_library() -> None:
    assert run_parser("bibtex", b"@comment{nothing here yet}\n") == []


# -- fuzzing -----------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = [p.read_bytes() for p in sorted(BIB.glob("*.bib"))]
BIB_ALPHABET = st.sampled_from(list('@{}(),="#%\\ \n\tabcmiscarticletitleyear0123456789é'))


def check(data: bytes) -> None:
    try:
        items = run_parser("bibtex", data)
    except FormatError:
        return
    for item in items:
        assert isinstance(item, Parsed | Rejected)
        item.locator.encode("utf-8")  # storable: no lone surrogates
        if isinstance(item, Rejected):
            assert item.reason
            assert "\n" not in item.reason
            item.reason.encode("utf-8")
            item.raw.encode("utf-8")  # storable: no lone surrogates
        else:
            assert item.paper.title
            assert all(ord(c) < 0xD800 or ord(c) > 0xDFFF for c in item.paper.title)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.text(alphabet=BIB_ALPHABET, max_size=300))
def test_fuzz_bibtex_like_text(text: str) -> None:
    check(text.encode("utf-8"))


@FUZZ
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=60),
    st.binary(max_size=8),
)
def test_fuzz_mutated_samples(sample: bytes, at: int, cut: int, insert: bytes) -> None:
    at = at % (len(sample) + 1)
    check(sample[:at] + insert + sample[at + cut :])
    check(sample[:at])  # truncated


def test_splitter_failure_costs_only_its_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # bibtexparser fails hard on states it considers its own bugs; simulate one.
    real = bibtex_module._split_with_bibtexparser

    def flaky(text: str) -> list[Block]:
        if "BOOM" in text:
            raise RuntimeError("internal splitter state")
        return real(text)

    monkeypatch.setattr(bibtex_module, "_split_with_bibtexparser", flaky)
    good, bad = parse_text(
        "% header\n@misc{a, title={A}}\n@misc{b,\n title={BOOM}}\n"
        "@string{m = {Macro}}\n  @misc{c, title=m}\n"
    )
    assert [(p.locator, p.paper.title) for p in good] == [
        ("entry a (line 2)", "A"),
        ("entry c (line 6)", "Macro"),
    ]
    assert [r.locator for r in bad] == ["entry b (line 3)"]
    assert bad[0].reason == "unreadable BibTeX block (RuntimeError: internal splitter state)"


def test_percent_and_ampersand_mean_themselves() -> None:
    good, _ = parse_text(
        "@misc{a, title={R&D at 5%}, abstract={Gains of 5% over the {\\em baseline} \\& more}}\n"
    )
    assert good[0].paper.title == "R&D at 5%"
    assert good[0].paper.abstract == "Gains of 5% over the baseline & more"


def test_broken_bytes_in_a_key_give_a_storable_locator() -> None:
    good, bad = split(run_parser("bibtex", b"@misc{caf\xe9, title={T}}\n@misc{ok, title={Ok}}\n"))
    assert [p.paper.title for p in good] == ["Ok"]
    assert bad[0].locator == "entry caf\ufffd (line 1)"
    assert bad[0].reason.startswith("broken encoding")
