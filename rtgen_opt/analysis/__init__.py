"""Questions asked of a scenario: is it schedulable (check, max-fps), and how far is
each policy from its optimum (gap)."""
