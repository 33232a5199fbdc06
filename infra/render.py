"""Text for two media: Markdown (a pull-request comment, GitHub's renderer and sanitiser) and
terminals (a TTY or a CI log), each escaped for where it is read.

Policy messages are plain text written for people: ``<project>.svc.id.goog``, ``envoy.image``,
``kubeProxyReplacement: true``, sometimes a back-quoted command. In Markdown, GitHub drops any
tag it does not know, so an unquoted ``<project>`` would vanish; inside a code span nothing is
an entity or a tag, so a code span must never be entity-escaped. ``md_text`` therefore puts
every placeholder, config path and fix value into a code span and escapes the rest;
``md_code`` makes one code span. ``split_finding`` turns a policy message into the message
proper and its fix, without the "type 'name':" prefix the resource column already shows.

The terminal side (``term_text``) removes what a terminal or a CI log would act on: escape
sequences, other control characters, and line breaks (a line starting with ``::`` is a GitHub
workflow command). ``gh_data``/``gh_property`` escape workflow-command text as @actions/core
does (actions/toolkit packages/core/src/command.ts: escapeData, escapeProperty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "PLACEHOLDER",
    "FindingText",
    "gh_data",
    "gh_property",
    "md_code",
    "md_text",
    "split_finding",
    "term_text",
]

#: A placeholder a reader must replace: `<project>`, `<kms key>`, `<digest>`.
PLACEHOLDER = re.compile(r"<[A-Za-z][\w .:/-]*>")

# What becomes a code span in running text, tried in this order at each position:
_CODE_TOKENS = re.compile(
    r"""
      (?P<tick>`+)(?P<ticked>.+?)(?P=tick)             # already a code span
    | \{[^{}\n]*\}                                      # {state: "ENCRYPTED", keyName: <kms key>}
    | "[^"\n]*"(?=[\s.,;:)]|$)                          # a quoted value
    | [^\s"`(]*<[A-Za-z][\w .:/-]*>[^\s"`,;)]*          # anything holding a <placeholder>
    | (?<![\w./])/[\w.-]+(?:/[\w.-]+)*/?              # an absolute path: /tmp/out/prod
    | (?<![\w.])[A-Za-z_][\w-]*(?:\[[^\]\s]*\])*        # a config path: a.b[0].c, x[key],
      (?:(?:[./][\w-]+)(?:\[[^\]\s]*\])*)+              #   policies/data/file.json
      (?::\ (?:true|false|[0-9]+|"[^"]*"))?             #   with `: value` when it sets one
    | (?<![\w.])[A-Za-z_][\w-]*\[[^\]\s]+\]             # resourceLabels[meshless-gke-mode]
    | (?<![\w.])[A-Za-z_]\w*:\ (?:true|false)\b         # kubeProxyReplacement: true
    """,
    re.VERBOSE,
)
# Dotted words that are prose, not paths.
_PROSE = {"e.g", "i.e", "etc"}
_TRAILING = ".,;:)"


def md_code(text: str, *, table: bool = True) -> str:
    """One Markdown code span holding ``text`` verbatim (no entities: a code span shows them
    literally). A back-quote inside gets a longer fence; in a table cell a ``|`` is written
    ``\\|``, which GFM unescapes inside code spans of cells too (GFM spec, tables)."""
    text = " ".join(str(text).split("\n"))
    if table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_escape(text: str, table: bool) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Emphasis, strikethrough and link brackets would change what the text says.
    for ch in "`*_~[]":
        text = text.replace(ch, "\\" + ch)
    if table:
        text = text.replace("|", "\\|")
    return text


def _code_spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into (is_code, piece)."""
    pieces: list[tuple[bool, str]] = []
    pos = 0
    for match in _CODE_TOKENS.finditer(text):
        token = match.group("ticked") if match.group("tick") else match.group(0)
        start, end = match.span()
        if not match.group("tick"):
            stripped = token.rstrip(_TRAILING)
            # keep a closing parenthesis that belongs to the token: f(x)
            while stripped.count("(") > stripped.count(")") and token[len(stripped) :][:1] == ")":
                stripped += ")"
            end -= len(token) - len(stripped)
            token = stripped
            if token.lower() in _PROSE or not token:
                continue
        if start > pos:
            pieces.append((False, text[pos:start]))
        pieces.append((True, token))
        pos = end
    if pos < len(text):
        pieces.append((False, text[pos:]))
    return pieces


def md_text(text: object, *, table: bool = True) -> str:
    """Plain text as Markdown: placeholders, config paths and values in code spans, the rest
    escaped (``< > & | ` * _ ~ [ ]``), on one line (a table cell ends at a line break)."""
    flat = " ".join(str(text).split())
    return "".join(
        md_code(piece, table=table) if is_code else _md_escape(piece, table)
        for is_code, piece in _code_spans(flat)
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def term_text(text: object) -> str:
    """One line of text a terminal or CI log shows as it is: no escape sequences, no control
    characters (shown as ``\\xNN``), no line breaks (joined with spaces)."""
    flat = " ".join(str(text).replace("\r", "\n").split("\n"))
    flat = flat.replace("\t", " ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", flat)


def gh_data(text: str) -> str:
    """A workflow command's message (after the last ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(text: str) -> str:
    """A workflow command property value (``file=``, ``title=``)."""
    return gh_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class FindingText:
    """A policy message as a reviewer reads it: what is wrong, then how to fix it."""

    message: str
    fix: str | None


# Imperative verbs the pack's fixes start with ("Set ...", "Use ...", "Remove ...").
_FIX_VERBS = (
    "Add",
    "Change",
    "Create",
    "Declare",
    "Delete",
    "Deploy",
    "Drop",
    "Enable",
    "Give",
    "Install",
    "Move",
    "Pin",
    "Raise",
    "Remove",
    "Rename",
    "Replace",
    "Run",
    "Set",
    "Translate",
    "Turn",
    "Use",
)
_FIX_START = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\")]))\s+(?=(?:" + "|".join(_FIX_VERBS) + r")\b)")


def _resource_prefix(urn: str) -> re.Pattern[str] | None:
    parts = urn.split("::")
    if len(parts) < 4:
        return None
    typ, name = parts[2].rsplit("$", 1)[-1], parts[-1]
    return re.compile(rf"^\s*{re.escape(typ)}\s+'{re.escape(name)}'\s*:\s*")


def split_finding(message: str, urn: str = "") -> FindingText:
    """The message without the "type 'name':" prefix (the resource is shown beside it), cut
    at the first sentence that starts with a fix verb. No such sentence: no fix."""
    prefix = _resource_prefix(urn)
    text = prefix.sub("", message, count=1) if prefix else message
    text = text.strip()
    match = _FIX_START.search(text)
    if not match:
        return FindingText(text, None)
    return FindingText(text[: match.start()].strip(), text[match.end() :].strip())
