"""The documentation: every relative link of README.md and docs/*.md leads somewhere (a file,
and a heading anchor as GitHub spells it), and the README stays a short tour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.M)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (as github-slugger does): the rendered text lowercased,
    punctuation removed (ASCII ``!``-``,``, ``.``, ``/``, ``:``-``@``, ``[``-``^``, backtick,
    ``{``-``~``; hyphen and underscore stay), each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = text.replace("`", "").lower()
    kept = [ch for ch in text if ch in " -_" or ch.isalnum()]
    return "".join(kept).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a page, numbered -1, -2, ... where a heading repeats."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(page: Path, root: Path) -> list[str]:
    """The relative links of ``page`` that lead to no file inside ``root``, or to no heading of
    the page they name."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.is_relative_to(root.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif (
            anchor
            and linked.suffix == ".md"
            and anchor not in anchors(linked.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading with this anchor in {linked.name}")
    return broken


def documentation_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", documentation_pages(), ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    assert broken_links(page, REPO) == []


def test_slugs_as_github_spells_them():
    # Expected anchors worked out by hand from github-slugger's rules (see github_slug).
    assert github_slug("Pixel spacing and the common grid (`resample`)") == (
        "pixel-spacing-and-the-common-grid-resample"
    )
    assert github_slug("Symbolic links inside data_dir") == "symbolic-links-inside-data_dir"
    assert github_slug("Architecture: from link.csv to a batch") == (
        "architecture-from-linkcsv-to-a-batch"
    )
    assert github_slug("Looking at the QC, and closing the loop") == (
        "looking-at-the-qc-and-closing-the-loop"
    )
    assert anchors("# A\n## Notes\n```\n# not a heading\n```\n## Notes\n") == {
        "a",
        "notes",
        "notes-1",
    }


def test_the_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Real heading\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Top\n\n[ok](docs/page.md#real-heading) [ok](#top) [web](https://example.org/x)\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#no-heading) [here](#nowhere)\n"
        "![picture](docs/missing.png) `[in code](docs/missing.md)`\n"
        "```\n[in a fence](docs/missing.md)\n```\n[outside](../elsewhere.md)\n"
    )
    assert broken_links(readme, tmp_path) == [
        "docs/missing.md: no such file",
        "docs/page.md#no-heading: no heading with this anchor in page.md",
        "#nowhere: no heading with this anchor in README.md",
        "docs/missing.png: no such file",
        "../elsewhere.md: outside the repository",
    ]


def test_readme_is_a_short_tour_that_reaches_training_early():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    training = lines.index("## Training with the loader")
    assert training < 60  # within the first screenful of scrolling


def test_readme_shows_both_qc_screenshots():
    readme = (REPO / "README.md").read_text()
    for picture in ("docs/qc-report.png", "docs/qc-review.png"):
        assert f"]({picture})" in readme
        assert (REPO / picture).is_file()
