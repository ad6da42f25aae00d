"""Accounts: users, their roles and bearer tokens; officers and their devices."""
