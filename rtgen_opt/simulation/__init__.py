"""The embedded event-driven executor and the scheduling policies it runs."""
