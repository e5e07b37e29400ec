"""crm_bridge: the built-in CRM (leads, contacts, deals, attachments) behind a CRM adapter."""
