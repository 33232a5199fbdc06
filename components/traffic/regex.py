"""RE2 checks for the regexes a traffic file passes to Cilium (``pathRegex``, header regexes).

Cilium hands HTTP path regexes to Envoy, which matches them with Google's RE2 against the whole
value (Envoy ``safe_regex``: "google_re2", full match; Cilium's PortRuleHTTP.Path is "an extended
POSIX regex ... matched against the path"; Envoy's route matcher compiles it with RE2). So the
check compiles the pattern with RE2 itself (the ``google-re2`` bindings, pinned in
pyproject.toml) instead of guessing from Python's parser: what RE2 accepts (``\\p{L}``, ``\\pN``,
``\\Q...\\E``) passes, what it refuses (lookaround, backreferences, ``\\Z``, possessive repeats,
repeat counts over 1000) fails with RE2's own reason.
"""

from __future__ import annotations

import re

import re2

__all__ = ["check_re2", "compile_re2", "literal_regex"]

# RE2 metacharacters; escaping only these keeps `/api/v1/order-items` readable.
_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")

# RE2 logs every parse error to stderr by default; the caller reports the reason instead.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False

# Reasons RE2 gives tersely, with the construct a Python/PCRE user most likely meant.
_HINTS = {
    "invalid perl operator: (?=": "lookahead (?=...) is not supported by RE2",
    "invalid perl operator: (?!": "lookahead (?!...) is not supported by RE2",
    "invalid perl operator: (?<": "lookbehind (?<=...) (?<!...) is not supported by RE2",
    "invalid perl operator: (?>": "atomic groups (?>...) are not supported by RE2",
    "invalid perl operator: (?x": "inline flag x is not supported by RE2 (it has i, m, s, U)",
    "invalid escape sequence: \\Z": "\\Z is not supported by RE2; use $ or \\z",
    "bad repetition operator: ++": "possessive repeats (*+, ++, ?+) are not supported by RE2",
    "bad repetition operator: *+": "possessive repeats (*+, ++, ?+) are not supported by RE2",
    "bad repetition operator: ?+": "possessive repeats (*+, ++, ?+) are not supported by RE2",
    "invalid repetition size": "RE2 allows repeat counts up to 1000",
}


def _reason(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for prefix, hint in _HINTS.items():
        if text.startswith(prefix):
            return f"{hint} ({text})"
    if re.match(r"invalid escape sequence: \\[1-9]", text):
        return f"backreferences (\\1, (?P=name)) are not supported by RE2 ({text})"
    return text


def check_re2(pattern: str) -> str | None:
    """Why ``pattern`` is not a regex Cilium (Envoy, RE2) accepts, or None if it is."""
    if pattern == "":
        return "empty regular expression matches only an empty value"
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        return f"invalid regular expression: {_reason(exc)}"
    return None


def compile_re2(pattern: str) -> re2._Regexp | None:
    """``pattern`` compiled by RE2 as Envoy compiles it, or None if RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error:
        return None


def literal_regex(text: str) -> str:
    """``text`` as an RE2 regex matching exactly it: only metacharacters are escaped, so
    ``/api/v1/order-items`` stays readable (``re.escape`` would also escape ``-``)."""
    return _RE2_META.sub(r"\\\1", text)
