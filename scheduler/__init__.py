"""The periodic tick (APScheduler) and the jobs it runs."""
