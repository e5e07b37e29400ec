"""Use cases of the CRM bridge, one module per area; each one transaction."""
