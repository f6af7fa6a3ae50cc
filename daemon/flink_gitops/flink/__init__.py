"""The one service that talks to Flink: the REST client (the only module importing
httpx), its error tree, retry and circuit breaker, and the local cluster launcher
used by ``demo`` and the tests.

Its log lines (one per REST call at DEBUG) are off until someone enables them, so a
library user sees nothing on stderr: the CLI calls ``logger.enable("flink_gitops")``
when it configures logging."""

from loguru import logger

logger.disable(__name__)
