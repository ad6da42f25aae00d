"""The custody log as a Merkle tree (RFC 6962 / RFC 9162): sequencing, checkpoints, proofs."""
