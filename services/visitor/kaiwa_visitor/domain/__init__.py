from .keys import new_widget_key, tenant_of_key, validate_label
from .model import PageView, RevokedSession, Visitor, WidgetKey
from .secrets import StoredSecret, Verdict, check_secret_format, hash_secret, judge_secret, new_visitor_secret
from .tracking import VISIT_TIMEOUT, PageViewInput, check_may_track, starts_new_visit, validate_page_view

__all__ = [
    "new_widget_key",
    "tenant_of_key",
    "validate_label",
    "PageView",
    "RevokedSession",
    "Visitor",
    "WidgetKey",
    "StoredSecret",
    "Verdict",
    "check_secret_format",
    "hash_secret",
    "judge_secret",
    "new_visitor_secret",
    "VISIT_TIMEOUT",
    "check_may_track",
    "PageViewInput",
    "starts_new_visit",
    "validate_page_view",
]
