"""asyncpg queries of the CRM bridge (schema `crm`); every query is scoped by tenant."""
