"""Retention policy and sweeps (issue 4): six months by default, permanent where the rules say.

Nothing here deletes anything yet; until the sweep exists, every original is kept.
"""
