"""One metrics function for every schedule, and the replay that validates a schedule
against every constraint of the problem."""
