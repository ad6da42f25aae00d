"""Copy-out approval (调取审批): a case export or an original's download for use outside the archive
needs a request with a purpose, approved by a second person holding the approver role."""
