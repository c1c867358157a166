"""SVG building blocks: every text escaped, every attribute quoted, nothing external.

Inventory and incident data are untrusted (a zone or an asset may be named anything):
text goes through `escape` and attributes through `quoteattr`, so no name can open an
element, an attribute or a script. Long names are cut to fit their box, with `…`.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

# An approximate advance of one character at the sizes used (11-14 px, sans-serif), so
# text is cut before it leaves its box; exact metrics would need the font.
CHAR_W = 0.64
BOLD_CHAR_W = 0.72
SVG_NS = "http://www.w3.org/2000/svg"
# XML 1.0 forbids most control characters even escaped: a name with one must still parse.
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def clean(value: object) -> str:
    """Text safe in an XML document: characters XML cannot carry become U+FFFD."""
    text = str(value)
    return "".join(
        "\ufffd"
        if (ord(c) < 0x20 and c not in _ALLOWED_CONTROLS)
        or 0xD800 <= ord(c) <= 0xDFFF
        or c in ("\ufffe", "\uffff")
        else c
        for c in text
    )


def fit(value: object, width: float, size: float, *, bold: bool = False) -> str:
    """The text, cut with an ellipsis to about `width` px at font size `size`."""
    text = " ".join(clean(value).split())
    most = max(1, int(width / (size * (BOLD_CHAR_W if bold else CHAR_W))))
    return text if len(text) <= most else text[: max(0, most - 1)] + "…"


def attrs(**values: object) -> str:
    """Quoted attributes; `class_` and `font_size`-style names become `class`, `font-size`."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f"{name}={quoteattr(clean(value))}")
    return " ".join(parts)


def text(
    x: float, y: float, value: object, *, width: float, size: float = 12, **extra: object
) -> str:
    shown = fit(value, width, size, bold=extra.get("font_weight") == "bold")
    return f"<text {attrs(x=_n(x), y=_n(y), font_size=_n(size), **extra)}>{escape(shown)}</text>"


def rect(x: float, y: float, w: float, h: float, **extra: object) -> str:
    return f"<rect {attrs(x=_n(x), y=_n(y), width=_n(w), height=_n(h), **extra)}/>"


def line(x1: float, y1: float, x2: float, y2: float, **extra: object) -> str:
    return f"<line {attrs(x1=_n(x1), y1=_n(y1), x2=_n(x2), y2=_n(y2), **extra)}/>"


def group(children: list[str], **extra: object) -> str:
    return f"<g {attrs(**extra)}>" + "".join(children) + "</g>"


def plain(value: object) -> str:
    """Element content: cleaned and escaped."""
    return escape(clean(value))


def title(value: object) -> str:
    return f"<title>{plain(value)}</title>"


def _n(value: float) -> str:
    """A coordinate without float noise: 12, 12.5, never 12.499999999."""
    rounded = round(float(value), 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)
