"""Parameter sweeps: the sweep file, the plan of runs, the cache, the engines, the
result table and its page."""
