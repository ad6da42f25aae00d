"""Restricted records (国家秘密、商业秘密、个人隐私): marks, explicit grants, reads with a stated purpose."""
