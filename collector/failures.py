"""A data-free name for a failure, for logs, `/readyz` reasons and metrics.

Exception messages may quote what they were working on (a path holding an insert token, a row
that did not parse); background failures are described by their kind only: the exception type,
the errno name of an OS error, the code and name of a ClickHouse error.
"""

from __future__ import annotations

import errno
import re

from collector.errors import SinkError

_CODE = re.compile(r"Code: (\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


def describe(e: BaseException) -> str:
    """`OSError ENOSPC`, `SinkError 243 NOT_ENOUGH_SPACE`, or the exception's type name."""
    kind = type(e).__name__
    if isinstance(e, OSError) and e.errno is not None:
        return f"{kind} {errno.errorcode.get(e.errno, str(e.errno))}"
    if isinstance(e, SinkError):
        text = str(e)
        code, name = _CODE.search(text), _NAME.search(text)
        return " ".join([kind, *([code[1]] if code else []), *([name[1]] if name else [])])
    return kind
