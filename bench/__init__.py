"""Benchmarks: scripts that print figures (`make bench`, `make bench-kb`), run from the repository
root. `bench.loadtest` is the load benchmark; its fake Bot API is the tests' own
(`tests/telegram/fake_api.py`)."""
