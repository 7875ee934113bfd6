"""The "re-match" codec: a regex match object (``m = regex.search(text)``), which pickle
cannot store, kept as the search that found it and found again on decode.

Stored: the pattern, its flags, the string searched, ``pos``/``endpos`` and which method
(search, match or fullmatch) finds the same groups again; ``can_encode`` checks that the
search finds exactly the same spans, so a match that cannot be found again is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from taskcache.codecs import tagged_json

_METHODS = ("search", "match", "fullmatch")


def _fields(match: re.Match) -> dict[str, Any] | None:
    """What finds ``match`` again, or None when no method finds the same groups."""
    fields = {"pattern": match.re.pattern, "flags": match.re.flags, "string": match.string,
              "pos": match.pos, "endpos": match.endpos}
    for method in _METHODS:
        again = _find(fields, method)
        if again is not None and again.regs == match.regs and again.lastindex == match.lastindex:
            return {**fields, "method": method}
    return None


def _find(fields: dict[str, Any], method: str) -> re.Match | None:
    regex = re.compile(fields["pattern"], fields["flags"])
    return getattr(regex, method)(fields["string"], fields["pos"], fields["endpos"])


class MatchCodec:
    """``re.Match`` as JSON: the search that finds it again."""

    name = "re-match"
    suffix = ".json"
    unsafe = False
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)

    def can_encode(self, value: Any) -> bool:
        return (type(value) is re.Match and type(value.string) in (str, bytes)
                and _fields(value) is not None)

    def encode(self, value: Any, path: Path) -> None:
        fields = _fields(value)
        if fields is None:
            raise ValueError("this match is not found again by its pattern")
        Path(path).write_text(tagged_json.dumps(fields), encoding="ascii")

    def decode(self, path: Path) -> Any:
        return self.decode_bytes(Path(path).read_bytes())

    def decode_bytes(self, data: bytes) -> Any:
        fields = tagged_json.loads(data.decode("ascii"))
        found = _find(fields, fields["method"])
        if found is None:
            raise ValueError("stored match not found again")
        return found
