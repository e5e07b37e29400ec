from .model import (CONTACT, LEAD, AttachmentInfo, Deal, DealChange, NewAttachment, Record, RecordChanges,
                    merged_fields, merged_type, normalize_email, validate_changes, validate_deal)

__all__ = ["CONTACT", "LEAD", "AttachmentInfo", "Deal", "DealChange", "NewAttachment", "Record", "RecordChanges",
           "merged_fields", "merged_type", "normalize_email", "validate_changes", "validate_deal"]
