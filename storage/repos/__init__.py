"""Repositories, one module per aggregate: the only place that builds queries."""
