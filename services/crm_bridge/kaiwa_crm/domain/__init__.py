from .model import (
    CONTACT,
    LEAD,
    AttachmentInfo,
    Deal,
    DealChange,
    NewAttachment,
    Record,
    RecordChanges,
    merged_fields,
    merged_type,
    validate_changes,
    validate_deal,
)

__all__ = [
    "CONTACT",
    "LEAD",
    "AttachmentInfo",
    "Deal",
    "DealChange",
    "NewAttachment",
    "Record",
    "RecordChanges",
    "merged_fields",
    "merged_type",
    "validate_changes",
    "validate_deal",
]
