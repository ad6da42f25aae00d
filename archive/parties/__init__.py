"""Parties (执法对象): the persons and organisations enforcement acts upon, named by cases."""
