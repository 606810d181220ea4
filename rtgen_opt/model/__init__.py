"""The problem as data: scenario files, the latency database, the task set a scenario
expands into over a horizon, and the schedule table every producer writes."""
