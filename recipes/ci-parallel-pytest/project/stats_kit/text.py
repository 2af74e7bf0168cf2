import re
from collections import Counter

_UNITS = {"h": 3600, "m": 60, "s": 1}


def slugify(s):
    s = re.sub(r"[^a-z0-9]+", "-", s.lower())
    return s.strip("-")


def word_counts(text, top=None):
    words = re.findall(r"[a-z']+", text.lower())
    return Counter(words).most_common(top)


def parse_duration(s):
    """'1h30m', '45s', '2m5s' -> seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", s.strip())
    if not s.strip() or not parts:
        raise ValueError(f"not a duration: {s!r}")
    return sum(int(v) * _UNITS[u] for v, u in zip(parts.groups(), "hms") if v)
