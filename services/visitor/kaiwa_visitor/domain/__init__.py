from .keys import new_widget_key, tenant_of_key, validate_label, visitor_id_for
from .model import PageView, Visitor, WidgetKey
from .tracking import VISIT_TIMEOUT, check_may_track, PageViewInput, starts_new_visit, validate_page_view

__all__ = ["new_widget_key", "tenant_of_key", "validate_label", "visitor_id_for", "PageView", "Visitor",
           "WidgetKey", "VISIT_TIMEOUT", "check_may_track", "PageViewInput", "starts_new_visit", "validate_page_view"]
