"""Wiring: CLI, scheduler, signals, sd_notify, HTTP status. The only room that builds real clients."""
