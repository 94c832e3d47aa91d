"""Operational plumbing around the domain: logs, the access log, metrics,
tracing, event-loop lag and the cgroup limits the process runs under.

Nothing in here knows about models or batching; the domain (model/, batching/,
service.py, admission.py) imports from here, never the other way round.
"""
