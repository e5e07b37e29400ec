"""visitor: widget keys and visitor tokens, visitors, visits and page views."""
