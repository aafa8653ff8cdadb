"""Rules for untrusted text (feed items, fetched articles): spot instructions, keep URLs in bounds.

Feed content is data, never instructions (DESIGN.md invariant 7). Prompts keep
it inside delimited data sections (`agents.prompts.data_section`); after a model answers,
these helpers remove what a hostile feed may have smuggled through: sentences
that read like instructions to a model (`looks_like_injection`,
`strip_injection`) and links that are not among the allowed sources
(`urls_in`, `drop_urls_except`). The research agent and the critic share them.

The heuristics are deliberately narrow (phrases aimed at a model, chat-role
markers), so ordinary tech news about "instructions" or "systems" passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Phrases that address a language model rather than a reader.
INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(ignore|disregard|forget|override|bypass|skip)\b[\w\s,'-]{0,40}?\b"
        r"(previous|prior|above|earlier|preceding|all|any|your|the|these|those|system)\b[\w\s'-]{0,20}?"
        r"\b(instructions?|prompts?|rules|directions|directives|guidelines|context|constraints)\b",
        r"\bsystem\s+prompt\b",
        r"\bdeveloper\s+(message|mode|prompt)\b",
        r"\byou\s+are\s+now\b",
        r"\bfrom\s+now\s+on\s*,?\s+(you|always|only|never)\b",
        r"\bnew\s+(instructions|rules|directives)\s*:",
        r"\b(act|behave)\s+as\s+(an?\s+|the\s+)?(ai|assistant|chatbot|language\s+model|llm|dan)\b",
        r"\bpretend\s+(to\s+be|you\s+are)\b",
        r"\b(reveal|print|repeat|output|show)\s+(me\s+)?(your|the)\s+(system\s+|hidden\s+|initial\s+)?(prompt|instructions)\b",
        r"\bdo\s+not\s+follow\s+(your|the|any)\b",
        r"\bjailbreak\b",
        r"<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|?>",
        r"\[/?(INST|SYS)\]|<</?SYS>>",
        r"</?\s*(system|instructions?|assistant)\s*>",
        r"(^|\n)\s*#{2,}\s*(system|instruction|instructions|response)\b",
        r"(^|\n)\s*(system|assistant)\s*:",
        r"\b(include|add|insert|post|publish|put)\s+(this|the\s+following|a)\s+(link|url)\b",
    )
)

_URL = re.compile(
    r"""\b(?:https?|ftp|javascript|data|file)://[^\s<>"'`)\]]+|\bwww\.[^\s<>"'`)\]]+"""
    # scheme links without "//" that run code when clicked: javascript:alert(1), data:text/html;base64,...
    r"""|\b(?:javascript|vbscript):[^\s<>"'`\]]+|\bdata:[a-z]+/[\w.+-]+[;,][^\s<>"'`)\]]*""",
    re.IGNORECASE,
)
# A scheme-less link: host.tld/path (a bare "ASP.NET" or "Node.js" is not one).
_BARE_DOMAIN_LINK = re.compile(r"(?<![\w@/.])(?:[a-z0-9-]+\.)+[a-z]{2,24}/[^\s<>\"'`)\]]*", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def looks_like_injection(text: str) -> bool:
    """True when the text contains a phrase addressed to a model ("ignore previous instructions", "you are now", ...)."""
    if not text:
        return False
    flat = " ".join(text.split()) if "\n" not in text else text
    return any(p.search(flat) for p in INJECTION_PATTERNS)


def strip_injection(text: str) -> str:
    """The text without the sentences or lines that look like instructions to a model."""
    if not looks_like_injection(text):
        return text
    kept = [s for s in _SENTENCE.split(text) if s.strip() and not looks_like_injection(s)]
    return " ".join(s.strip() for s in kept)


def urls_in(text: str) -> list[str]:
    """Every URL-looking token in the text (any scheme, plus bare www. links), in order."""
    return [m.group(0).rstrip(".,;:!?") for m in _URL.finditer(text or "")]


def drop_urls_except(text: str, allowed: Iterable[str]) -> str:
    """The text with every URL removed unless it is exactly one of `allowed` (after trailing punctuation)."""
    keep = {u.rstrip("/") for u in allowed}

    def _sub(m: re.Match[str]) -> str:
        url = m.group(0).rstrip(".,;:!?")
        tail = m.group(0)[len(url) :]
        return m.group(0) if url.rstrip("/") in keep else tail

    return _tidy(_URL.sub(_sub, text or ""))


def drop_bare_links_except(text: str, allowed_hosts: Iterable[str]) -> str:
    """The text without scheme-less links (evil.example/x) whose host is not one of `allowed_hosts`."""
    hosts = {h.lower() for h in allowed_hosts}

    def _sub(m: re.Match[str]) -> str:
        link = m.group(0).rstrip(".,;:!?")
        host = link.split("/", 1)[0].lower()
        return m.group(0) if host in hosts else m.group(0)[len(link) :]

    return _tidy(_BARE_DOMAIN_LINK.sub(_sub, text or ""))


def _tidy(text: str) -> str:
    # what a removed link leaves behind: doubled spaces, a space before punctuation
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
