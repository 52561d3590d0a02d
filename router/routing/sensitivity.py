"""Sensitivity rules: find personal data and secrets in a request and say what may happen to it.

A pool's `sensitive:` block lists rules; each names built-in detectors, its own regexes and
keywords (and, when `presidio-analyzer` is installed, a Presidio analyzer) and one action:

    local_only  only `local: true` slots may answer (fail closed: never a cloud slot)
    block       refuse the request
    redact      mask the matched spans before the request leaves the router

`scan(rules, messages)` reads every string of every message (system prompts, tool calls and tool
results included, not only the text the encoder routes on) and returns a `Scan`: which rule matched
where (message index, rule, detector, span count) and never the matched text itself, so the scan can
go into the audit log as it is. Pure: no serving imports, no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from router.routing.scan_cache import ScanCache, rules_key

Span = tuple[int, int]
ACTIONS = ("local_only", "block", "redact")
# Strongest first: a request that matches several rules gets the strictest treatment.
ACTION_RANK = {"block": 3, "local_only": 2, "redact": 1}
# Keys whose strings are structure, not content (ids, roles, base64 image data). Not skipped: a
# message's `name` and image URLs, which are free text that goes upstream (an email in
# `"name"` or in `?owner=` reached a cloud slot); a `data:` URL is skipped like base64 `data`.
SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id", "tool_use_id", "cache_control", "media_type",
                       "data", "signature"})
URL_KEYS = frozenset({"url", "image_url"})
FIELDS_MESSAGE = -1  # Match.message for a request field outside the messages


# ---- checks behind the detectors ---------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def my_number_ok(digits: str) -> bool:
    """Japan's individual number: 11 digits + a check digit (weights 2..7, 2..6 from the right, mod 11)."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = digits[:11]
    total = sum(int(p) * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(reversed(body), 1))
    r = total % 11
    return int(digits[11]) == (0 if r <= 1 else 11 - r)


def _only_digits(s: str) -> str:
    return re.sub(r"\D", "", s)


# Runs of digits and separators: the digit detectors only look inside these (one cheap pass
# instead of five regexes tried at every position of a long conversation).
DIGIT_RUN = re.compile(r"[+(]?\d[\d \-.()/\uff0d]*\d")
_RUN_CORE = re.compile(r"\d[\d \-.()/\uff0d]*\d")  # DIGIT_RUN without its optional lead: 3x faster to search


def digit_runs(text: str) -> list[Span]:
    """DIGIT_RUN's matches: the runs without the lead, then one `+` or `(` before each taken in."""
    out = []
    for m in _RUN_CORE.finditer(text):
        a, b = m.span()
        if a > 0 and text[a - 1] in "+(" and (not out or out[-1][1] <= a - 1):
            a -= 1
        out.append((a, b))
    return out


_SEP = r"[\s.\-\uff0d]"  # between a phone number's groups


@dataclass(frozen=True)
class Detector:
    name: str
    regex: re.Pattern
    check: Callable[[str], bool] | None = None
    needs: str | None = None  # a substring without which the detector cannot match ("digits": DIGIT_RUN)
    # windows(text, digit runs or None) -> where a match can be, for a regex too costly to try at
    # every position of a long conversation. A lookbehind sees before a span, so a span starts where
    # a match may start, and ends where the regex's lookahead sees what it sees in the whole text.
    windows: Callable[[str, list[Span] | None], list[Span]] | None = None

    def find(self, text: str, runs: list[Span] | None = None) -> list[Span]:
        if self.needs == "digits":
            runs = digit_runs(text) if runs is None else runs
        if self.windows is not None:
            found = (m for a, b in self.windows(text, runs) for m in self.regex.finditer(text, a, b))
        elif self.needs == "digits":
            # pos/endpos: lookbehinds still see the character before a run; a run is maximal, so one
            # character after it is all a lookahead needs.
            found = (m for a, b in runs for m in self.regex.finditer(text, a, min(len(text), b + 2)))
        elif self.needs is not None and self.needs not in text:
            return []
        else:
            found = self.regex.finditer(text)
        out = []
        for m in found:
            if (self.check is None or self.check(m.group(0))) and (not out or m.start() >= out[-1][1]):
                out.append(m.span())
        return out


def _ipv6_ok(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    # `a::b` (C++ scopes) parses as IPv6; real addresses in text nearly always hold a digit.
    return s.count(":") >= 2 and any(c.isdigit() for c in s)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

# Emails. A local part in a script written with spaces may hold any of its letters (josé, иван), so
# that an address written inside Japanese text without spaces (メールはyamada@example.jpです) starts
# where the address starts; one in a script without spaces is below (EMAIL). The domain may be
# internationalised (bücher.de, 例え.jp). An ASCII or punycode TLD ends at the first character that
# is not an ASCII letter, digit or hyphen, so the Japanese after it is not part of it. Also the
# fullwidth ＠ and the "[at]" / "(dot)" spellings people use to hide an address from scrapers.
# Scripts whose words are not separated by spaces: kana, CJK ideographs, halfwidth katakana; Thai,
# Lao, Khmer and Myanmar; and Hangul, which puts spaces between phrases but writes each particle onto
# its noun (기밀입니다), so a keyword's right edge has no word boundary there either.
_UNSPACED = ("\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
             "\u0e00-\u0eff\u1780-\u17ff\u1000-\u109f"
             "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af")
_LETTER = f"[^\\W{_UNSPACED}]"  # a letter (or digit, _) of a script written with spaces
_AT = r"(?:[@\uff20]|\s?[\[(]\s?(?i:at)\s?[\])]\s?)"
_DOT = r"(?:\.|\s?[\[(]\s?(?i:dot)\s?[\])]\s?)"
# Python's \w leaves out combining marks, without which Indic, Thai, Arabic or Hebrew words break
# (ตัวอย่าง, उदाहरण): domain labels and TLDs take these blocks' marks too.
_SPACED_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0dff"
# Labels also take Thai and Lao (ตัวอย่าง); their TLDs come from _UNSPACED_TLDS alone, since a TLD of
# letters would run on into the text after it.
_MARKS = _SPACED_MARKS + "\u0e00-\u0eff"
_LABEL = rf"[^\W_](?:[\w{_MARKS}-]{{0,61}}(?:[^\W_]|[{_MARKS}]))?"
# Internationalised TLDs in scripts written without spaces, listed: where such a TLD ends in running
# text cannot be told from its letters (例え.みんなです). Those in other scripts (.рф, .ελ, .бел)
# are any 2+ letters of one alphabet, ending where the letters end.
_UNSPACED_TLDS = ("中文网", "新加坡", "みんな", "コム", "世界", "中国", "中國", "香港", "台湾", "台灣", "澳門", "公司",
                  "网络", "网址", "在线", "在線", "商城", "集团", "游戏", "手机", "信息", "한국", "닷컴", "닷넷", "ไทย")
_ALPHA = f"[^\\W\\d_A-Za-z{_UNSPACED}]"  # a letter of a spaced script other than ASCII
# A local part in kana, kanji, Hangul or Thai (山田@例え.jp): its start cannot be seen in running text,
# so it is taken as up to 21 such characters before the @ (64 bytes of UTF-8, RFC 5321's bound): an
# address is then masked with at most the words that run into it, never only in part.
EMAIL = re.compile(rf"(?:(?<!{_LETTER})(?<![.%+-])(?:{_LETTER}|[.%+-])+|[{_UNSPACED}]{{1,21}}){_AT}(?:{_LABEL}{_DOT})+"
                   rf"(?:[A-Za-z]{{2,63}}(?![A-Za-z0-9-])|xn--[A-Za-z0-9-]{{2,59}}(?![A-Za-z0-9-])"
                   rf"|(?:{_ALPHA}|[{_SPACED_MARKS}]){{2,63}}(?!{_LETTER}|[{_SPACED_MARKS}-])|{'|'.join(_UNSPACED_TLDS)})")
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_WORDISH = re.compile(_LETTER)


@dataclass(frozen=True)
class Keywords:
    """A rule's keywords, found as whole words, case-blind. A bound applies where the keyword's
    edge is a letter of a script written with spaces (`confidential` is not in `unconfidentiality`)
    and only against such a letter; an edge in a script written without spaces between words (kana,
    CJK ideographs, Thai, Lao, Khmer, Myanmar, Hangul: see _UNSPACED) has no bound (社外秘 in
    これは社外秘です, ลับ in เอกสารลับนี้, 기밀 in 기밀입니다), nor does a Latin edge next to them
    (`confidential資料`). Found with str.find on the lowered text: a case-blind regex alternation
    was ~20 ms per 100k tokens, tried at every position."""

    words: tuple[tuple[str, bool, bool], ...]  # (lowered keyword, bound on its left, on its right)
    regex: re.Pattern  # the same rule as a regex, for a text whose lowering changes its length

    @classmethod
    def of(cls, keywords: Sequence[str]) -> Keywords:
        words, parts = [], []
        for k in keywords:
            left, right = not _UNSPACED_CHAR.match(k[0]), not _UNSPACED_CHAR.match(k[-1])
            words.append((k.lower(), left, right))
            lit = re.escape(k)
            parts.append((f"(?<!{_LETTER})" if left else "") + lit + (f"(?!{_LETTER})" if right else ""))
        return cls(tuple(words), re.compile("(?i)" + "|".join(parts)))

    def spans(self, text: str) -> list[Span]:
        low = text.lower()
        if len(low) != len(text):  # e.g. "İ" lowers to two characters: indices would drift
            return _regex_spans(self.regex, text)
        hits = []
        for order, (w, left, right) in enumerate(self.words):
            i = low.find(w)
            while i >= 0:
                j = i + len(w)
                if not ((left and i > 0 and _WORDISH.match(text, i - 1))
                        or (right and j < len(text) and _WORDISH.match(text, j))):
                    hits.append((i, order, j))
                i = low.find(w, i + 1)
        out: list[Span] = []
        for i, _, j in sorted(hits):  # leftmost first, then the keyword listed first, as a regex would
            if not out or i >= out[-1][1]:
                out.append((i, j))
        return out


def _regex_spans(rx: re.Pattern, text: str) -> list[Span]:
    return [m.span() for m in rx.finditer(text) if m.end() > m.start()]


_AT_SPELLED = re.compile(r"[\[(]\s?[aA][tT]\s?[\])]")


def _find_all(text: str, needle: str) -> list[int]:
    out, i = [], text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


def _union(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged, in order (search windows; the spans `mask` replaces)."""
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _around(positions: Iterable[int], n: int, back: int, ahead: int) -> list[Span]:
    return _union((max(0, p - back), min(n, p + ahead)) for p in positions)


def email_windows(text: str, _runs=None, back: int = 130, ahead: int = 300) -> list[Span]:
    """Spans around each at sign (`@`, `＠`, "[at]"): a local part is at most 64 characters, a
    domain 253, so an address lies within them; trying the regex at every position of a
    100k-token conversation cost more than every other detector together."""
    ats = [m.start() for m in _AT_SPELLED.finditer(text)] if ("[" in text or "(" in text) else []
    ats += _find_all(text, "@") + _find_all(text, "\uff20")
    return _around(ats, len(text), back, ahead)


_HEX_OR_COLON = frozenset("0123456789abcdefABCDEF:")


def ipv6_windows(text: str, _runs=None, reach: int = 40) -> list[Span]:
    """Spans around each colon (an address is at most 39 characters and holds two or more), widened
    to whole runs of hex digits and colons, so that the regex's bounds see what they would see in
    the whole text. Prose holds few colons: there the regex no longer runs over every position."""
    return [(_run_start(text, a, _HEX_OR_COLON), _run_end(text, b, _HEX_OR_COLON))
            for a, b in _around(_find_all(text, ":"), len(text), reach, reach)]


def _run_start(text: str, i: int, chars: frozenset) -> int:
    """Where the run of `chars` that ends at `i` starts (a lookbehind then sees what precedes it)."""
    while i > 0 and text[i - 1] in chars:
        i -= 1
    return i


def _run_end(text: str, i: int, chars: frozenset) -> int:
    """The end of the run of `chars` from `i`, plus one character: what a lookahead reads."""
    n = len(text)
    while i < n and text[i] in chars:
        i += 1
    return min(n, i + 1)


_IBAN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


def iban_windows(text: str, runs: list[Span] | None) -> list[Span]:
    """An IBAN starts two letters before a digit run (its check digits) and runs over capitals,
    digits and single spaces."""
    return _union((a - 2, _run_end(text, a, _IBAN_CHARS)) for a, _ in (digit_runs(text) if runs is None else runs)
                  if a >= 2)


# Every branch of _API_KEYS starts with one of these.
_KEY_PREFIXES = ("sk-", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "AKIA", "ASIA", "ghp_", "gho_", "ghu_",
                 "ghs_", "ghr_", "github_pat_", "glpat-", "AIza", "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-",
                 "xoxr-", "hf_", "eyJ")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def api_key_windows(text: str, _runs=None) -> list[Span]:
    """From each known prefix to the end of its run of key characters (a JWT's dots included)."""
    if len(text) < 1024:  # 23 searches cost more than the regex over a short string (a tool schema's)
        return [(0, len(text))]
    return _union((i, _run_end(text, i, _KEY_CHARS)) for p in _KEY_PREFIXES for i in _find_all(text, p))


_API_KEYS = "|".join([
    r"sk-ant-[A-Za-z0-9_-]{20,}",  # Anthropic
    r"sk-or-v1-[A-Fa-f0-9]{32,}",  # OpenRouter
    r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",  # OpenAI
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{36,}", r"github_pat_[A-Za-z0-9_]{22,}",  # GitHub
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"AIza[0-9A-Za-z_-]{35}",  # Google
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JWT
])

DETECTORS: dict[str, Detector] = {d.name: d for d in [
    Detector("email", EMAIL, windows=email_windows),
    # 10..15 digits in a phone-like shape (a date, a version or an SSN has fewer). After a country
    # code the area code may be one digit (+81 3 ..., +33 1 ...). The bounds are ASCII letters and
    # digits, so that a number inside Japanese text (電話は03-1234-5678です) is one; the fullwidth
    # hyphen separates groups too (０３－１２３４－５６７８).
    Detector("phone", re.compile(rf"(?<![A-Za-z0-9_+])(?:\+\d{{1,3}}{_SEP}?(?:\(\d{{1,4}}\){_SEP}?)?\d{{1,4}}"
                                 rf"|(?:\(\d{{1,4}}\){_SEP}?)?\d{{2,4}})(?:{_SEP}\d{{2,4}}){{1,4}}(?![A-Za-z0-9_-])"
                                 r"|(?<![A-Za-z0-9_+])\+\d{8,15}(?![A-Za-z0-9_])"),
             lambda s: 10 <= len(_only_digits(s)) <= 15 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s),
             needs="digits"),
    Detector("credit_card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
             lambda s: 13 <= len(_only_digits(s)) <= 19 and luhn_ok(_only_digits(s)), needs="digits"),
    Detector("iban", re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"), iban_ok,
             needs="digits", windows=iban_windows),
    Detector("us_ssn", re.compile(r"(?<![\d-])(?<!\d )(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}"
                                  r"(?![\d-]| \d)"), needs="digits"),
    # 12 digits (4-4-4 with one separator kind or none) that are not part of a longer digit group.
    Detector("my_number", re.compile(r"(?<![\d-])(?<!\d )\d{4}([- ]?)\d{4}\1\d{4}(?![\d-]| \d)"),
             lambda s: my_number_ok(_only_digits(s)), needs="digits"),
    Detector("api_key", re.compile(rf"(?<![A-Za-z0-9_-])(?:{_API_KEYS})(?![A-Za-z0-9_-])"), windows=api_key_windows),
    Detector("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                                       r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"), needs="-----BEGIN"),
    Detector("ip_address", re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)"), needs="digits"),
    Detector("ipv6", re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])"),
             _ipv6_ok, windows=ipv6_windows),
]}
# `ip_address` in a rule means both families.
ALIASES = {"ip_address": ("ip_address", "ipv6")}
BUILTIN_NAMES = sorted(set(DETECTORS) - {"ipv6"})


# ---- the rule, as it appears in the pool YAML --------------------------------------------------

class PresidioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: list[str] | None = None  # None: every entity the analyzer knows
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    language: str = "en"


class SensitiveRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    detectors: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    presidio: PresidioSpec | None = None
    action: Literal["local_only", "block", "redact"]
    _matcher: Matcher | None = PrivateAttr(default=None)

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d not in BUILTIN_NAMES]
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; the built-ins are {', '.join(BUILTIN_NAMES)} "
                             f"(for anything else add a regex under patterns)")
        return v

    @field_validator("patterns")
    @classmethod
    def _valid_regexes(cls, v: list[str]) -> list[str]:
        for i, p in enumerate(v):
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"patterns[{i}] {p!r} is not a valid regex ({exc}); fix it (Python `re` syntax, "
                                 f"quote it in single quotes in YAML)") from None
        return v

    @field_validator("keywords")
    @classmethod
    def _non_empty_keywords(cls, v: list[str]) -> list[str]:
        if any(not k.strip() for k in v):
            raise ValueError("keywords may not be empty strings")
        return v

    @field_validator("presidio")
    @classmethod
    def _presidio_installed(cls, v):
        if v is not None and not presidio_available():
            raise ValueError("presidio-analyzer is not installed: pip install -r requirements-presidio.txt, "
                             "or remove this rule's presidio block")
        return v

    @model_validator(mode="after")
    def _something_to_match(self):
        if not (self.detectors or self.patterns or self.keywords or self.presidio):
            raise ValueError(f"rule {self.name!r} matches nothing: give detectors, patterns, keywords or presidio")
        return self

    def model_post_init(self, _ctx: Any) -> None:
        comp: list[tuple[str, Callable[[str], list[Span]]]] = [
            (f"pattern[{i}]", partial(_regex_spans, re.compile(p))) for i, p in enumerate(self.patterns)]
        if self.keywords:
            comp.append(("keyword", Keywords.of([k.strip() for k in self.keywords]).spans))
        plan = tuple((d, DETECTORS[n], DETECTORS[n].needs == "digits")
                     for d in self.detectors for n in ALIASES.get(d, (d,)))
        digest = hashlib.blake2b(self.model_dump_json().encode(), digest_size=16).digest()
        self._matcher = Matcher(plan, tuple(comp), self.presidio, digest)

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    def find(self, text: str, runs: list[Span] | None = None) -> list[tuple[str, list[Span]]]:
        """(detector, spans) for every detector of this rule that matched `text`."""
        return self._matcher.find(text, runs)


@dataclass(frozen=True)
class Matcher:
    """A rule compiled: its detectors (aliases resolved), its regexes and keywords, its Presidio spec.
    A plain object, because a tool schema or an agent conversation has hundreds of short strings and
    the per-string overhead (a pydantic attribute costs ~1 us), not the regexes, is what a scan costs."""

    plan: tuple[tuple[str, Detector, bool], ...]  # (label, detector, needs DIGIT_RUN spans)
    compiled: tuple[tuple[str, Callable[[str], list[Span]]], ...]  # patterns and keywords: text -> spans
    presidio: PresidioSpec | None = None
    fingerprint: bytes = b""  # of the rule as configured: what a cached result was computed under

    @property
    def needs_digit_runs(self) -> bool:
        return any(digits for _, _, digits in self.plan)

    def find(self, text: str, runs: list[Span] | None = None) -> list[tuple[str, list[Span]]]:
        """`runs`: DIGIT_RUN's spans in `text`, when the caller computed them (once for every rule)."""
        out = []
        for d, det, digits in self.plan:
            if digits:
                if runs is None:
                    runs = digit_runs(text)
                if not runs:
                    continue
            spans = det.find(text, runs)
            if spans:
                out.append((d, spans))
        for label, spans_in in self.compiled:
            spans = spans_in(text)
            if spans:
                out.append((label, spans))
        if self.presidio is not None:
            spans = presidio_spans(text, self.presidio)
            if spans:
                out.append(("presidio", spans))
        return out


def pool_problems(rules: Sequence[SensitiveRule], slots: Sequence[Any]) -> list[str]:
    """Load-time checks that need the whole pool (one line per problem, with the field and the fix)."""
    problems = []
    seen: dict[str, int] = {}
    has_local = any(s.local and s.enabled for s in slots)
    for i, r in enumerate(rules):
        if r.name in seen:
            problems.append(f"sensitive[{i}].name: duplicate rule name {r.name!r} (also sensitive[{seen[r.name]}])")
        seen.setdefault(r.name, i)
        if r.action == "local_only" and not has_local:
            problems.append(f"sensitive[{i}].action (rule {r.name!r}): local_only needs at least one enabled slot "
                            f"with local: true, and this pool has none; add an on-prem slot or use action: block")
    return problems


# ---- Presidio (optional) -----------------------------------------------------------------------

def presidio_available() -> bool:
    try:
        import presidio_analyzer  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=4)
def _analyzer(language: str):
    # Built once per process (it loads a spaCy model); read-only afterwards, so sharing it is safe.
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(supported_languages=[language])


def presidio_spans(text: str, spec: PresidioSpec) -> list[Span]:
    results = _analyzer(spec.language).analyze(text=text, language=spec.language, entities=spec.entities,
                                               score_threshold=spec.score_threshold)
    return sorted((r.start, r.end) for r in results)


# ---- scanning a request ------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    message: int  # index in the request's message list
    rule: str
    detector: str
    spans: int
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "rule": self.rule, "detector": self.detector, "spans": self.spans,
                "action": self.action}


@dataclass
class Scan:
    matches: list[Match] = field(default_factory=list)
    # (message index, string path) -> spans to mask, for redact rules
    _redact: dict[int, list[tuple[str, Span]]] = field(default_factory=dict)
    _all: dict[int, list[tuple[str, Span]]] = field(default_factory=dict)
    ms: float = 0.0

    @property
    def action(self) -> str | None:
        """The strictest action among the rules that matched (None: nothing matched)."""
        acts = {m.action for m in self.matches}
        return max(acts, key=ACTION_RANK.__getitem__) if acts else None

    @property
    def local_only(self) -> bool:
        return any(m.action == "local_only" for m in self.matches)

    @property
    def blocked(self) -> bool:
        return any(m.action == "block" for m in self.matches)

    @property
    def redacts(self) -> bool:
        return any(m.action == "redact" for m in self.matches)

    def rules(self, action: str | None = None) -> list[str]:
        return list(dict.fromkeys(m.rule for m in self.matches if action is None or m.action == action))

    def reason(self) -> str:
        if not self.matches:
            return ""
        parts = []
        for m in self.matches:
            where = "the request's other fields" if m.message == FIELDS_MESSAGE else f"message {m.message}"
            parts.append(f"rule {m.rule!r} ({m.detector}, {m.spans} span{'s' if m.spans != 1 else ''} "
                         f"in {where})")
        return "; ".join(dict.fromkeys(parts))

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "rules": self.rules(), "matches": [m.to_dict() for m in self.matches]}


def _walk(obj: Any, fn: Callable[[str, str], str | None], path: str = "") -> Any:
    """Call fn(path, text) on every content string; a non-None return replaces the string."""
    if isinstance(obj, str):
        new = fn(path, obj)
        return obj if new is None else new
    if isinstance(obj, list):
        return [_walk(v, fn, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: (v if (k in SKIP_KEYS and isinstance(v, (str, dict)))
                    or (k in URL_KEYS and isinstance(v, str) and v[:5].lower() == "data:")
                    else _walk(v, fn, f"{path}.{k}"))
                for k, v in obj.items()}
    return obj


def with_fields(messages_scan: Scan, fields_scan: Scan) -> Scan:
    """The messages' scan plus the matches in the request's other fields (message FIELDS_MESSAGE).
    Those fields are passed upstream unmasked, so a redact rule matching there keeps the request
    on-prem (local_only) instead: failing closed."""
    spans: dict[tuple[str, str, str], int] = {}  # the fields may come scanned one by one: one match per kind
    for m in fields_scan.matches:
        key = (m.rule, m.detector, "local_only" if m.action == "redact" else m.action)
        spans[key] = spans.get(key, 0) + m.spans
    for (rule, det, action), n in spans.items():
        messages_scan.matches.append(Match(FIELDS_MESSAGE, rule, det, n, action))
    messages_scan.ms += fields_scan.ms
    return messages_scan


def scan(rules: Sequence[SensitiveRule], messages: Sequence[Any] | str, cache: ScanCache | None = None) -> Scan:
    """Run every rule over every string of every message (a bare string is one user message).
    `cache`: per-message results kept by the message's hash (router/routing/scan_cache.py), so that
    a conversation resent with one more turn scans only that turn."""
    import time

    t0 = time.perf_counter()
    out = Scan()
    msgs = [messages] if isinstance(messages, str) else list(messages or [])
    found = [(r.name, r.action, r.matcher) for r in rules]
    rkey = rules_key([m.fingerprint for _, _, m in found]) if cache is not None and found else None
    digit_rules = any(m.needs_digit_runs for _, _, m in found)
    if found:
        for mi, msg in enumerate(msgs):
            key = cache.key(rkey, msg) if rkey is not None else None
            entry = cache.get(key) if key is not None else None
            if entry is None:
                entry = _scan_message(found, digit_rules, msg)
                if key is not None:
                    cache.put(key, entry)
            counts, every, red = entry
            if every:
                out._all[mi] = list(every)
            if red:
                out._redact[mi] = list(red)
            out.matches.extend(Match(mi, rule, det, n, act) for (rule, det, act), n in counts)
    out.ms = (time.perf_counter() - t0) * 1e3
    return out


def _scan_message(found: Sequence[tuple[str, str, Matcher]], digit_rules: bool, msg: Any) -> tuple[tuple, tuple, tuple]:
    """What one message contributes to a scan: its (rule, detector, action) span counts, in the order
    they were first seen, and its spans by string path (all of them, and those of redact rules).
    `digit_rules`: some rule has a digit detector, so each string's digit runs are found once."""
    counts: dict[tuple[str, str, str], int] = {}
    every: list[tuple[str, Span]] = []
    red: list[tuple[str, Span]] = []

    def visit(path: str, text: str) -> None:
        runs = digit_runs(text) if digit_rules else None
        for name, action, matcher in found:
            for det, spans in matcher.find(text, runs):
                key = (name, det, action)
                counts[key] = counts.get(key, 0) + len(spans)
                every.extend((path, s) for s in spans)
                if action == "redact":
                    red.extend((path, s) for s in spans)
        return None

    _walk(msg, visit)
    return tuple(counts.items()), tuple(every), tuple(red)


def mask(text: str, spans: Iterable[Span], label: str = "[REDACTED]") -> str:
    for a, b in reversed(_union(spans)):
        text = text[:a] + label + text[b:]
    return text


def _apply(messages: Sequence[Any] | str, where: dict[int, list[tuple[str, Span]]]) -> Any:
    single = isinstance(messages, str)
    msgs = [messages] if single else list(messages)
    out = []
    for mi, msg in enumerate(msgs):
        todo = where.get(mi)
        if not todo:
            out.append(msg)
            continue
        by_path: dict[str, list[Span]] = {}
        for path, span in todo:
            by_path.setdefault(path, []).append(span)
        out.append(_walk(msg, lambda path, text, by_path=by_path: mask(text, by_path[path]) if path in by_path else None))
    return out[0] if single else out


def redact(messages: Sequence[Any] | str, result: Scan) -> Any:
    """The request with the spans of `redact` rules masked (a new structure; the input is untouched)."""
    return _apply(messages, result._redact) if result._redact else messages


def redact_all(messages: Sequence[Any] | str, result: Scan) -> Any:
    """Every matched span masked, whatever the rule's action: what may be written to the audit log."""
    return _apply(messages, result._all) if result._all else messages


def redact_text(rules: Sequence[SensitiveRule], text: str) -> str:
    """A single text with every span any rule matches masked (for the audit copy of the routed text)."""
    res = scan(rules, text)
    return redact_all(text, res)
