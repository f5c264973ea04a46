"""The documents follow the code: docs/api.md names every public name and every method,
the README points to every document, and no document points outside the repository."""

import re
from pathlib import Path

import camlab

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_api_names_every_public_name():
    missing = [name for name in camlab.__all__
               if not re.search(rf"`(camlab\.)?{re.escape(name)}[`(]", API)]
    assert missing == []


def test_api_method_table_lists_exactly_the_registered_methods():
    table = API[API.index("| method | paper |"):API.index("- `normalize=False")]
    listed = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert listed == list(camlab.METHODS)


def test_the_readme_points_to_every_document():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for document in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{document.name}" in readme, document.name


def test_links_between_documents_resolve():
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text(encoding="utf-8")):
            assert (document.parent / target).exists(), (document.name, target)


def test_code_and_documents_name_notebooks_and_tutorials_not_tracker_numbers():
    """A maintainer has the notebooks and docs/sources.md, not the seeds or the issue tracker."""
    pattern = re.compile(r"\bseed[ -]00\d|\bissues? \d+\b", re.I)
    files = [*ROOT.glob("camlab/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("tools/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in files
             if path != Path(__file__)
             for match in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert found == []
