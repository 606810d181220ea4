"""The optimum: solver orchestration, warm starts and the upper-bound construction."""
