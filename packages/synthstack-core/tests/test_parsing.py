"""Document parsing: type detection, text/Markdown/HTML/PDF/DOCX extraction and hostile input.

Every fixture is built here, in memory: PDFs are written object by object (with a correct xref
table), DOCX files are zipped from hand-written WordprocessingML, and the encrypted PDFs come from
pypdf's own writer (RC4, which needs no cryptography package).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
import textwrap
import zipfile
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthstack_core.errors import (
    InvalidRequest,
    PayloadTooLarge,
    SynthStackError,
    UnsupportedMediaType,
)
from synthstack_core.features.parsing import ParsedDocument, detect_source_type, parse_document
from synthstack_core.features.parsing import docx as docx_parser
from synthstack_core.features.parsing import pdf as pdf_parser
from tests.documents import (
    CONTENT_TYPES,
    encrypt_pdf,
    flate_bomb,
    make_docx,
    make_pdf,
    w_p,
    w_table,
)

# --------------------------------------------------------------------------- fixtures


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def parse(data: bytes, **kwargs: Any) -> ParsedDocument:
    options: dict[str, Any] = {"source_type": None, "filename": None, "max_chars": 1_000_000}
    options.update(kwargs)
    return parse_document(data, **options)


def fails(data: bytes, error: type[SynthStackError], code: str, **kwargs: Any) -> SynthStackError:
    with pytest.raises(error) as raised:
        parse(data, **kwargs)
    assert raised.value.instance_code == code, raised.value.detail
    assert raised.value.status == {InvalidRequest: 422, UnsupportedMediaType: 415}.get(error, 413)
    return raised.value


# --------------------------------------------------------------------------- import


def test_importing_the_core_loads_no_parser() -> None:
    code = textwrap.dedent(
        """
        import sys
        import synthstack_core
        import synthstack_core.features.parsing
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"pypdf", "selectolax", "pyromark"})
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- text and Markdown


def test_utf8_text_is_kept_with_newlines_normalised_and_nuls_removed() -> None:
    doc = parse("Grüße\r\nline two\rthree\x00\n".encode())
    assert doc == ParsedDocument(text="Grüße\nline two\nthree\n", source_type="text")
    assert doc.page_breaks == ()
    assert doc.page_at(3) is None


@pytest.mark.parametrize(
    ("encoded", "label"),
    [
        ("\ufeffcafé ünïcode".encode(), "utf-8 BOM"),
        ("\ufeffcafé ünïcode".encode("utf-16-le"), "utf-16-le BOM"),
        ("\ufeffcafé ünïcode".encode("utf-16-be"), "utf-16-be BOM"),
        ("\ufeffcafé ünïcode".encode("utf-32-le"), "utf-32-le BOM"),
    ],
)
def test_byte_order_marks_select_the_encoding(encoded: bytes, label: str) -> None:
    assert parse(encoded).text == "café ünïcode", label
    assert parse(encoded, source_type="text").text == "café ünïcode", label


def test_utf16_without_bom_is_not_guessed() -> None:
    fails("é".encode("utf-16-le") * 3, InvalidRequest, "undecodable_text", source_type="text")


def test_latin1_text_is_undecodable_when_declared_and_unsupported_when_anonymous() -> None:
    latin1 = "Ein Café für Jürgen".encode("latin-1")
    fails(latin1, InvalidRequest, "undecodable_text", source_type="text")
    fails(latin1, InvalidRequest, "undecodable_text", filename="notes.txt")
    fails(latin1, UnsupportedMediaType, "unsupported_document_type")


def test_markdown_comes_from_the_filename_and_is_read_as_text() -> None:
    source = "```\n# not a title\n```\n# The *Guide* #\n\nSome **bold** text.\n"
    doc = parse(source.encode(), filename="README.md")
    assert doc.source_type == "markdown"
    assert doc.text == "```\n# not a title\n```\n\n# The Guide\n\nSome bold text."
    assert doc.title == "The Guide"
    setext = parse(b"Setext Title\n============\n\nbody\n", source_type="markdown")
    assert setext.text == "# Setext Title\n\nbody"
    assert setext.title == "Setext Title"
    assert parse(b"no heading here", source_type="markdown").title is None
    assert parse(b"## Only a second level", source_type="markdown").title is None
    assert parse(b"# md", filename="notes.txt").text == "# md"  # plain text stays as it is


README = """\
# The __Zstandard__ codec

[![build](https://ci.example/badge.svg)](https://ci.example)
![](https://example.com/banner.png)

Fast *lossless* compression, licensed under [BSD](LICENSE); see <https://facebook.github.io/zstd>.
Call `ZSTD_compress()` &amp; you are done.\\
A new line.

![diagram of the pipeline](img.png)

## Install

- with **pip**
- from source:
  1. clone
  2. build

3. Then test.

```python
# a comment, not a heading
import zstd
```

    indented code

| Level | Speed |
|-------|-------|
| 1     | *fast* |

> [!NOTE]
> Quoted ~~old~~ text.<br>Next line.

<div align="center"><b>Made</b> with care <img src="x.png" alt="ignored"></div>

<details>
<summary>More</summary>

Hidden *detail*.[^1]

</details>

\\# not a heading either

---

[^1]: A footnote.
"""


def test_markdown_is_indexed_as_text_with_its_structure() -> None:
    doc = parse(README.encode(), filename="README.md")
    assert doc.title == "The Zstandard codec"
    assert doc.text == (
        "# The Zstandard codec\n\n"
        "build\n\n"  # a badge's alt text; an image without one gives nothing
        "Fast lossless compression, licensed under BSD; see https://facebook.github.io/zstd. "
        "Call ZSTD_compress() & you are done.\nA new line.\n\n"
        "diagram of the pipeline\n\n"
        "## Install\n\n"
        "with pip\nfrom source:\n1. clone\n2. build\n\n"
        "3. Then test.\n\n"
        "```python\n# a comment, not a heading\nimport zstd\n```\n\n"
        "```\nindented code\n```\n\n"
        "Level | Speed\n1 | fast\n\n"
        "Quoted old text.\nNext line.\n\n"
        "Made with care\n\n"
        "More\n\n"
        "Hidden detail.\n\n"
        "\\# not a heading either\n\n"
        "A footnote."
    )
    for raw in ("__", "](", "![", "**", "`ZSTD", "img.png", "[!NOTE]", "[^1]", "<b>", "&amp;"):
        assert raw not in doc.text, raw


def test_markdown_headings_stay_sections_for_the_chunker() -> None:
    from synthstack_core.features.chunking import split_text

    class Words:
        def count(self, text: str) -> int:
            return len(text.split())

    body = "Words about the subject go here. " * 8
    source = f"# Manual\n\n{body}\n\n## The **second** part\n\n```sh\n# setup\nmake\n```\n\n{body}"
    doc = parse(source.encode(), source_type="markdown")
    chunks = split_text(
        doc.text, chunk_size=80, chunk_overlap=0, counter=Words(), source_type="markdown"
    )
    assert [chunk.text.split("\n")[0] for chunk in chunks] == ["# Manual", "## The second part"]
    assert "```sh\n# setup\nmake\n```" in chunks[1].text  # a comment in code starts no section
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_markdown_front_matter_gives_the_title_and_is_not_text() -> None:
    source = b'---\ntitle: "Release *notes*"\ntags: [a, b]\n---\n# Heading\n\nBody.\n'
    doc = parse(source, filename="notes.md")
    assert doc.text == "# Heading\n\nBody."
    assert doc.title == "Release *notes*"  # YAML, not Markdown
    untitled = parse(b"---\ntags: [a]\n---\n# Heading\n", filename="notes.md")
    assert (untitled.text, untitled.title) == ("# Heading", "Heading")
    # Not YAML, not a mapping, or further down: the lines are the author's text.
    broken = parse(b"---\ntitle: [unclosed\n---\nBody\n", filename="notes.md")
    assert (broken.text, broken.title) == ("title: [unclosed\n\nBody", None)
    ruled = parse(b"---\nA paragraph between rules.\n---\n", filename="notes.md")
    assert (ruled.text, ruled.title) == ("A paragraph between rules.", None)
    later = parse(b"Intro\n\n---\ntitle: x\n---\n", filename="notes.md")
    assert (later.text, later.title) == ("Intro\n\ntitle: x", None)


def test_markdown_html_block_headings_give_a_title() -> None:
    doc = parse(b'<h1 align="center">Project</h1>\n\nAbout it.\n', filename="README.md")
    assert (doc.text, doc.title) == ("Project\n\nAbout it.", "Project")


def test_markdown_of_images_without_alt_text_is_empty() -> None:
    fails(b"![](a.png)\n![](b.png)\n", InvalidRequest, "empty_document", filename="a.md")


def test_deeply_nested_markdown_is_refused_quickly() -> None:
    fails(b">" * 200_000 + b" deep", InvalidRequest, "document_too_complex", filename="a.md")
    fails(b"*" * 100_000 + b"a" + b"*" * 100_000, InvalidRequest, "document_too_complex",
          filename="a.md")  # fmt: skip
    html = b"<div>\n" + b"<b>" * 50_000 + b"deep"
    fails(html, InvalidRequest, "document_too_complex", filename="a.md")
    # An unclosed comment runs to the end: 200,000 of them are one HTML block, read in linear time.
    comments = b"Text.\n\n" + b"<!--" * 200_000
    assert parse(comments, filename="a.md").text == "Text."
    nested = "".join("  " * depth + "- item\n" for depth in range(30))
    assert parse(nested.encode(), filename="a.md").text == "\n".join(["item"] * 30)


def test_markdown_whose_text_outgrows_max_chars_is_too_long() -> None:
    code = b"    x\n\ny\n\n" * 100  # 900 characters; as text, 1,400 (code is fenced)
    assert len(parse(code, filename="a.md").text) > 1000
    fails(code, PayloadTooLarge, "document_too_long", filename="a.md", max_chars=1000)


def test_empty_or_blank_input_is_an_empty_document() -> None:
    fails(b"", InvalidRequest, "empty_document")
    fails(b" \n\t\x00\r\n", InvalidRequest, "empty_document", source_type="text")
    fails(b"<html><body><script>x()</script></body></html>", InvalidRequest, "empty_document")


def test_text_over_max_chars_is_too_long() -> None:
    fails(b"x" * 101, PayloadTooLarge, "document_too_long", max_chars=100)
    assert parse(b"x" * 100, max_chars=100).text == "x" * 100
    with pytest.raises(ValueError):
        parse(b"x", max_chars=0)


def test_unknown_declared_type_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(b"text", source_type="rtf")
    assert raised.value.errors[0].loc == ("source_type",)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"plain words", None, "text"),
        (b"  <!DOCTYPE html><p>x", None, "html"),
        (b"\xef\xbb\xbf<html lang=en><p>x", None, "html"),
        (b"<p>fragment</p>", "page.htm", "html"),
        (b"# md", "notes.markdown", "markdown"),
        (b"ID3 tags are text here", None, "text"),
        (b"The %PDF-1.7 header starts every PDF.", None, "text"),
    ],
)
def test_detection_from_content_and_filename(
    data: bytes, filename: str | None, expected: str
) -> None:
    assert detect_source_type(data, filename) == expected


def test_pdf_and_docx_are_detected_by_content_whatever_their_name() -> None:
    assert detect_source_type(make_pdf([["x"]]), "scan.docx") == "pdf"
    assert detect_source_type(make_docx(w_p("x")), "letter.txt") == "docx"
    assert detect_source_type(b"\n\n" + make_pdf([["x"]])) == "pdf"


def test_binary_of_another_kind_is_unsupported() -> None:
    for data in (PNG, b"\xff\xd8\xff\xe0" + bytes(200), b"\x1f\x8b\x08\x00" + bytes(100)):
        error = fails(data, UnsupportedMediaType, "unsupported_document_type")
        assert "Supported:" in error.detail
    fails(b"{\\rtf1\\ansi hello}", UnsupportedMediaType, "unsupported_document_type")


def test_a_declared_type_must_match_the_content() -> None:
    fails(PNG, InvalidRequest, "corrupt_document", source_type="pdf")
    fails(b"just text", InvalidRequest, "corrupt_document", source_type="pdf")
    fails(make_pdf([["x"]]), InvalidRequest, "corrupt_document", source_type="docx")
    fails(make_pdf([["x"]]), InvalidRequest, "corrupt_document", source_type="text")
    fails(make_docx(w_p("x")), InvalidRequest, "corrupt_document", source_type="html")
    fails(b"just text", InvalidRequest, "corrupt_document", filename="report.pdf")


# --------------------------------------------------------------------------- HTML

PAGE = b"""<!DOCTYPE html>
<html><head><title>  The
 Page </title><style>p { color: red }</style>
<script>document.write("<p>SCRIPT</p>")</script></head>
<body>
<nav><a href="/">NAVIGATION</a></nav>
<header>SITE BANNER</header>
<main><article><header><h1>Article heading</h1></header>
<p>First   paragraph,
with a <a href="#">link</a> and <b>bold</b>.</p>
<div>Line one<br>Line two</div>
<h2>Second heading</h2>
<p>Caf&eacute; &amp; cr&#232;me&nbsp;br&ucirc;l&eacute;e</p>
<table><tr><th>Name</th><th>Qty</th></tr><tr><td>apples</td><td>3</td></tr></table>
<ul><li>one<li>two</ul>
<pre>  indented
    code</pre>
<p hidden>HIDDEN</p><p style="display: none">INVISIBLE</p><noscript>NOSCRIPT</noscript>
<template>TEMPLATE</template><aside>ASIDE</aside>
</article></main>
<footer>SITE FOOTER</footer>
</body></html>"""


def test_html_keeps_headings_and_paragraphs_as_blocks_and_drops_the_rest() -> None:
    doc = parse(PAGE)
    assert doc.source_type == "html"
    assert doc.title == "The Page"
    assert doc.text == (
        "Article heading\n\n"
        "First paragraph, with a link and bold.\n\n"
        "Line one\nLine two\n\n"
        "Second heading\n\n"
        "Café & crème brûlée\n\n"
        "Name | Qty\napples | 3\n\n"
        "one\n\n"
        "two\n\n"
        "  indented\n    code"
    )
    for hidden in ("SCRIPT", "NAVIGATION", "BANNER", "FOOTER", "HIDDEN", "INVISIBLE", "ASIDE"):
        assert hidden not in doc.text


def test_broken_html_is_parsed_like_a_browser_would() -> None:
    broken = (
        b"<html><body><p>one<p>two<div>three</span></div><h2>Head<p>after"
        b"<script>document.write('</p>LEAK')</script> tail<table><tr><td>c1<td>c2</table>"
        b"<!-- comment --><b>unclosed bold<p>last"
    )
    doc = parse(broken)
    assert (
        doc.text == "one\n\ntwo\n\nthree\n\nHead\n\nafter tail\n\nc1 | c2\n\nunclosed bold\n\nlast"
    )
    assert doc.title is None  # no <title>, no <h1>


def test_html_fragment_needs_the_declared_type() -> None:
    fragment = b"<p>Hello <em>world</em></p>"
    assert parse(fragment).source_type == "text"
    assert parse(fragment, source_type="html").text == "Hello world"


def test_html_meta_charset_is_honoured() -> None:
    data = '<html><head><meta charset="windows-1252"></head><body><p>Café</p>'.encode("cp1252")
    doc = parse(data)
    assert doc.text == "Café"
    assert doc.title is None


def test_deeply_nested_html_is_refused_quickly() -> None:
    deep = b"<html><body>" + b"<div>" * 50_000 + b"deep"
    fails(deep, InvalidRequest, "document_too_complex")
    utf16 = "\ufeff<html><body>" + "<DIV>" * 50_000 + "deep"
    fails(utf16.encode("utf-16-le"), InvalidRequest, "document_too_complex")
    comments = b"<html><body>" + b"<!--" * 200_000
    fails(comments, InvalidRequest, "empty_document")
    fine = b"<html><body>" + b"<div>" * 300 + b"fine" + b"</div>" * 300 + b"<p>x</p>" * 5000
    assert parse(fine).text.startswith("fine\n\nx")


def test_html_over_max_chars_stops_early() -> None:
    fails(
        b"<html><body>" + b"<p>word</p>" * 1000, PayloadTooLarge, "document_too_long", max_chars=50
    )


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_text_and_page_breaks() -> None:
    pdf = make_pdf(
        [["Page one, line one.", "Page one (line two)."], [], ["Third page"]],
        title="Quarterly Report",
    )
    doc = parse(pdf)
    assert doc.source_type == "pdf"
    assert doc.title == "Quarterly Report"
    assert doc.text == "Page one, line one.\nPage one (line two).\n\nThird page"
    third = doc.text.index("Third")
    # The empty second page starts where the third does.
    assert doc.page_breaks == (0, third, third)
    assert doc.page_at(0) == 1
    assert doc.page_at(third - 1) == 1
    assert doc.page_at(third) == 3
    assert parse(pdf, source_type="pdf", filename="report.pdf") == doc


def test_compressed_pdf_and_accented_text() -> None:
    doc = parse(make_pdf([["Café crème", "naïve"]], compress=True))
    assert doc.text == "Café crème\nnaïve"
    assert doc.title is None


def test_encrypted_pdf_is_refused_but_an_owner_only_lock_is_not() -> None:
    pdf = make_pdf([["secret words"]])
    fails(encrypt_pdf(pdf, user_password="pw"), InvalidRequest, "encrypted_document")
    assert parse(encrypt_pdf(pdf, user_password="")).text == "secret words"


def test_aes_encrypted_pdf() -> None:
    # pypdf needs `cryptography` for AES; the core installs it (pypdf[crypto]), so this always runs.
    pdf = make_pdf([["secret words"]])
    aes = encrypt_pdf(pdf, user_password="pw", algorithm="AES-256")
    fails(aes, InvalidRequest, "encrypted_document")
    assert parse(encrypt_pdf(pdf, user_password="", algorithm="AES-128")).text == "secret words"


def test_truncated_and_fake_pdfs_are_corrupt() -> None:
    pdf = make_pdf([["a line of text"] * 20] * 3)
    fails(pdf[: len(pdf) // 3], InvalidRequest, "corrupt_document")
    fails(b"%PDF-1.7\n%garbage\n", InvalidRequest, "corrupt_document")
    fails(b"%PDF-1.7\n" + bytes(range(256)) * 8, InvalidRequest, "corrupt_document")


def test_png_declared_as_pdf_is_corrupt_and_anonymous_png_unsupported() -> None:
    fails(PNG, InvalidRequest, "corrupt_document", source_type="pdf")
    # Without a declared type the content decides; the file name is only a hint.
    fails(PNG, UnsupportedMediaType, "unsupported_document_type", filename="scan.pdf")
    fails(PNG, UnsupportedMediaType, "unsupported_document_type")


def test_pdf_without_text_is_empty() -> None:
    fails(make_pdf([[], []]), InvalidRequest, "empty_document")


def test_pdf_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = make_pdf([["one"], ["two"], ["three"]])
    fails(pdf, PayloadTooLarge, "document_too_long", max_chars=8)
    monkeypatch.setattr(pdf_parser, "PDF_MAX_PAGES", 2)
    fails(pdf, PayloadTooLarge, "document_too_long")
    monkeypatch.setattr(pdf_parser, "PDF_MAX_PAGES", 2_000)
    monkeypatch.setattr(pdf_parser, "PDF_MAX_OPERATIONS", 10)
    fails(pdf, InvalidRequest, "document_too_complex")
    monkeypatch.setattr(pdf_parser, "PDF_MAX_OPERATIONS", 2_000_000)
    monkeypatch.setattr(pdf_parser, "PDF_MAX_PAGE_CHARS", 4)
    fails(pdf, InvalidRequest, "document_too_complex")


def test_pdf_decompression_bomb_is_refused() -> None:
    bomb = flate_bomb(80 * 1024 * 1024, prefix=b"BT /F1 12 Tf 72 700 Td (boom) Tj ET\n")
    assert len(bomb) < 200_000
    fails(make_pdf([], streams=[bomb]), InvalidRequest, "document_too_complex")


def test_pdf_operator_spam_is_bounded() -> None:
    spam = zlib.compress(b"BT /F1 12 Tf 72 700 Td\n" + b"(abc) Tj\n" * 300_000 + b"ET\n")
    fails(make_pdf([], streams=[spam]), InvalidRequest, "document_too_complex")


# --------------------------------------------------------------------------- DOCX

DOCX_BODY = (
    w_p("Annual Summary", "Titel")
    + w_p("Introduction", "berschrift1")
    + w_p("First paragraph.")
    + "<w:p><w:r><w:t>Tab</w:t><w:tab/><w:t>bed and</w:t><w:br/><w:t>broken</w:t></w:r></w:p>"
    + '<w:p><w:r><w:t xml:space="preserve">Kept </w:t></w:r><w:ins w:id="1" w:author="a">'
    "<w:r><w:t>inserted</w:t></w:r></w:ins>"
    '<w:del w:id="2" w:author="a"><w:r><w:delText>DELETED</w:delText></w:r></w:del>'
    "<w:r><w:rPr><w:vanish/></w:rPr><w:t>HIDDEN</w:t></w:r>"
    '<w:r><w:rPr><w:vanish w:val="0"/></w:rPr><w:t xml:space="preserve"> shown</w:t></w:r></w:p>'
    + "<w:sdt><w:sdtPr/><w:sdtContent>"
    + w_p("Inside a content control.")
    + "</w:sdtContent></w:sdt>"
    + w_table(
        [
            [w_p("Name"), w_p("Qty")],
            [w_p("apples"), w_p("3") + w_table([[w_p("nested"), w_p("cell")]])],
            [w_p(""), w_p("")],
        ]
    )
    + '<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx>'
    "<w:txbxContent>"
    + w_p("Text box")
    + "</w:txbxContent></wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict>"
    "<w:txbxContent>"
    + w_p("Text box")
    + "</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"
    + w_p("   ")
    + w_p("Last paragraph &amp; end.")
)


def test_docx_paragraphs_headings_tables_and_revisions() -> None:
    doc = parse(make_docx(DOCX_BODY, core_title="Core Title"))
    assert doc.source_type == "docx"
    assert doc.title == "Core Title"
    assert doc.page_breaks == ()
    assert doc.text == (
        "Annual Summary\n\n"
        "Introduction\n\n"
        "First paragraph.\n\n"
        "Tab\tbed and\nbroken\n\n"
        "Kept inserted shown\n\n"
        "Inside a content control.\n\n"
        "Name | Qty\napples | 3 nested | cell\n\n"
        "Text box\n\n"
        "Last paragraph & end."
    )


def test_docx_title_falls_back_to_the_title_style_and_styles_are_optional() -> None:
    assert parse(make_docx(DOCX_BODY)).title == "Annual Summary"
    no_styles = parse(make_docx(w_p("Plain", "Titel"), styles=False))
    assert no_styles.text == "Plain"
    assert no_styles.title is None


def test_docx_zip_bomb_is_refused_before_parsing() -> None:
    # 20 MB of spaces that are not even XML: parsing it would be a corrupt_document.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        with archive.open("word/document.xml", "w") as member:
            for _ in range(20):
                member.write(b" " * (1 << 20))
    bomb = buffer.getvalue()
    assert len(bomb) < 100_000
    error = fails(bomb, InvalidRequest, "document_too_complex")
    assert "100:1" in error.detail


def test_docx_size_and_entry_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {f"word/media/part{i}.bin": bytes([i % 256]) * 10 for i in range(30)}
    docx = make_docx(w_p("x"), extra=extra)
    assert parse(docx).text == "x"
    monkeypatch.setattr(docx_parser, "DOCX_MAX_ENTRIES", 20)
    fails(docx, InvalidRequest, "document_too_complex")
    monkeypatch.setattr(docx_parser, "DOCX_MAX_ENTRIES", 10_000)
    monkeypatch.setattr(docx_parser, "DOCX_MAX_UNCOMPRESSED_BYTES", 500)
    fails(docx, InvalidRequest, "document_too_complex")


def test_docx_with_ten_thousand_and_one_entries_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        for index in range(10_000):
            archive.writestr(f"f/{index}", b"")
    fails(buffer.getvalue(), InvalidRequest, "document_too_complex")


def test_corrupt_docx_files() -> None:
    docx = make_docx(w_p("some text") * 50)
    fails(docx[: len(docx) // 2], InvalidRequest, "corrupt_document")
    fails(docx[: len(docx) // 2], InvalidRequest, "corrupt_document", source_type="docx")
    bad_xml = make_docx("<w:p><w:r><w:t>unclosed</w:r></w:p>")
    fails(bad_xml, InvalidRequest, "corrupt_document")


def test_zip_that_is_not_a_docx() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    fails(buffer.getvalue(), UnsupportedMediaType, "unsupported_document_type")
    fails(buffer.getvalue(), InvalidRequest, "corrupt_document", source_type="docx")


def test_password_protected_office_file_and_legacy_doc() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)
    encrypted = ole + "EncryptedPackage".encode("utf-16-le") + bytes(100)
    fails(encrypted, InvalidRequest, "encrypted_document")
    fails(encrypted, InvalidRequest, "encrypted_document", source_type="docx")
    fails(ole, UnsupportedMediaType, "unsupported_document_type")
    fails(ole, InvalidRequest, "corrupt_document", source_type="docx")


def test_docx_over_max_chars() -> None:
    fails(make_docx(w_p("word " * 40) * 10), PayloadTooLarge, "document_too_long", max_chars=300)


# --------------------------------------------------------------------------- robustness


def test_parsing_writes_no_temporary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a temporary file was created")

    for name in (
        "mkstemp",
        "mkdtemp",
        "NamedTemporaryFile",
        "TemporaryFile",
        "SpooledTemporaryFile",
    ):
        monkeypatch.setattr(tempfile, name, forbidden)
    assert parse(make_pdf([["pdf text"]])).text == "pdf text"
    assert parse(make_docx(w_p("docx text"))).text == "docx text"
    assert parse(PAGE).title == "The Page"


SEEDS = [make_pdf([["alpha beta"], ["gamma"]], compress=True), make_docx(DOCX_BODY), PAGE]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.sampled_from(SEEDS),
    cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=8)), max_size=6),
)
def test_damaged_documents_fail_only_with_problem_errors(
    seed: bytes, cuts: list[tuple[int, bytes]]
) -> None:
    data = bytearray(seed)
    for position, replacement in cuts:
        at = position % len(data)
        data[at : at + len(replacement)] = replacement
    try:
        doc = parse(bytes(data))
    except (InvalidRequest, UnsupportedMediaType, PayloadTooLarge):
        return
    assert doc.text.strip()
    assert "\x00" not in doc.text


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_fail_only_with_problem_errors(data: bytes) -> None:
    with contextlib.suppress(InvalidRequest, UnsupportedMediaType, PayloadTooLarge):
        parse(data)


MARKDOWN_PIECES = [
    "# ", "## ", "\n", "\n\n", "    ", "- ", "1. ", "> ", "**", "_", "`", "```", "~~~", "[", "]",
    "(", ")", "![", "<", ">", "<div>", "</div>", "<!--", "-->", "|", "---", "===", "\\", "&amp;",
    "[^1]", "[^1]: ", "- [ ] ", "word", "Wörter ", "x", " ", "\t", "#",
]  # fmt: skip


@settings(max_examples=200, deadline=None, database=None)
@given(pieces=st.lists(st.sampled_from(MARKDOWN_PIECES), max_size=60))
def test_any_markdown_reads_as_text_or_fails_with_a_problem(pieces: list[str]) -> None:
    from synthstack_core.features.chunking import split_text

    class Characters:
        def count(self, text: str) -> int:
            return len(text)

    try:
        doc = parse("".join(pieces).encode(), filename="any.md")
    except InvalidRequest as error:
        assert error.instance_code == "empty_document"
        return
    assert doc.text.strip() and doc.text == doc.text.strip()
    chunks = split_text(
        doc.text, chunk_size=40, chunk_overlap=5, counter=Characters(), source_type="markdown"
    )
    assert chunks and all(doc.text[c.start : c.end] == c.text for c in chunks)
