import logging

from collector.log_limits import RepeatLimiter, flush_suppressed, template_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def limited(burst: int = 3, window_s: float = 10.0) -> tuple[logging.Logger, Collect, Clock]:
    clock = Clock()
    handler = Collect()
    handler.addFilter(RepeatLimiter(handler, burst, window_s, clock))
    logger = logging.getLogger(f"test.log_limits.{id(handler)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler, clock


def test_a_flood_writes_a_burst_then_one_count() -> None:
    logger, out, clock = limited()
    for i in range(1000):
        logger.warning("rejected a request: %d", i)
    assert out.lines == [f"rejected a request: {i}" for i in range(3)]
    clock.now += 10  # the window is over: the next line brings the count first
    logger.warning("rejected a request: %d", 1000)
    assert out.lines[3:] == [
        f"suppressed 997 similar lines from {logger.name} (at most 3 per 10 s are written)",
        "rejected a request: 1000",
    ]


def test_other_messages_pass_and_exempt_records_always_pass() -> None:
    logger, out, _ = limited(burst=1)
    for _ in range(5):
        logger.info("one thing")
        logger.info("another thing")
        logger.info("GET /healthz 200", extra={"log_limit_key": None})
    assert out.lines.count("one thing") == 1 and out.lines.count("another thing") == 1
    assert out.lines.count("GET /healthz 200") == 5


def test_explicit_keys_group_and_separate() -> None:
    logger, out, _ = limited(burst=2)
    for status in (400, 400, 400, 413, 413, 413):
        logger.info("POST %d", status, extra={"log_limit_key": ("access", status)})
    assert out.lines == ["POST 400", "POST 400", "POST 413", "POST 413"]


def test_preformatted_messages_group_by_first_line_without_numbers() -> None:
    assert template_key("Task exception was never retrieved\nfuture: <Task-12>") == template_key(
        "Task exception was never retrieved\nfuture: <Task-9000>"
    )
    assert template_key("closed 12 connections") == template_key("closed 4000 connections")
    assert template_key("closed") != template_key("opened")


def test_flush_writes_pending_counts() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = Collect()
    handler.addFilter(RepeatLimiter(handler, 1, 60.0))
    root.handlers[:] = [handler]
    try:
        for _ in range(4):
            root.warning("disk full")
        flush_suppressed()
    finally:
        root.handlers[:] = saved
    assert handler.lines == [
        "disk full",
        "suppressed 3 similar lines from root (at most 1 per 60 s are written)",
    ]
