"""Kaiwa routing service: agents, departments, offers, assignment, queue, transfers, team."""
