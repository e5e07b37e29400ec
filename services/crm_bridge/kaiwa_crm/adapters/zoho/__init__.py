"""A Zoho CRM account through its REST API v8 (CRM-10)."""
