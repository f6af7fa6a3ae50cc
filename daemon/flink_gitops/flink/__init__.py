"""The one service that talks to Flink: the REST client (the only module importing
httpx), its error tree, retry and circuit breaker, and the local cluster launcher
used by ``demo`` and the tests."""
