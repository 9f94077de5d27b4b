"""The garbage collector tuned for a serving process: measured in `make bench` (issue 11).

Every request allocates thousands of short-lived containers (a decoded 500-record JSON body,
a row dict per record), and CPython starts a young-generation pass every 700 net allocations
and, every so often, a full pass over the whole heap: the parsed user-agent regexes, the
policies, aiohttp and the engine's client objects, all alive for the life of the process. On the
corpus that was ~1 us per record of collector time and the full passes showed as spikes in the
ack latency. Nearly all of these objects are freed by reference counting (no cycles), so:
- `gc.freeze()` once started moves everything alive then out of the collector's sight (it is
  never garbage: the app's own state);
- a larger young generation (`YOUNG`) makes the passes rarer, each over the same young objects
  a request leaves behind. Cycles are still collected, only later: memory stays bounded.
Called by the served process only (collector/server.py), never on import: tests keep the
interpreter's defaults.
"""

from __future__ import annotations

import gc

YOUNG = 50_000  # net container allocations between two young passes (CPython's default: 700)
OLDER = 20  # young passes between two middle ones, middle between two full ones (default: 10)


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, OLDER, OLDER)
