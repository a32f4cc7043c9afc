"""SQLAlchemy 2.x typed models. No Flask here, and no commits: the caller owns the transaction."""

from models.auth import API_KEY_ROLES, USER_ROLES, ApiKey, User
from models.base import Base, UTCDateTime, utcnow
from models.ops import AuditEntry, GeocodeCacheEntry, OutboxEvent, WebhookAttempt
from models.organization import (
    ORGANIZATION_KINDS,
    Office,
    Organization,
    OrganizationSkill,
    OrganizationStats,
)
from models.people import (
    LEAD_STATUSES,
    REFERRAL_SOURCE_KINDS,
    Department,
    Lead,
    Person,
    Visit,
)
from models.referral import (
    OPEN_STATUSES,
    PROPOSAL_STATUSES,
    REFERRAL_STATUSES,
    TARGET_SCOPES,
    Client,
    IdempotencyRecord,
    KpiCorrection,
    KpiMonth,
    KpiMonthSnapshot,
    KpiTarget,
    KpiTargetProposal,
    Referral,
    ReferralEvent,
)

__all__ = [
    "API_KEY_ROLES",
    "LEAD_STATUSES",
    "REFERRAL_SOURCE_KINDS",
    "Department",
    "Lead",
    "Person",
    "Visit",
    "OPEN_STATUSES",
    "ORGANIZATION_KINDS",
    "REFERRAL_STATUSES",
    "USER_ROLES",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Client",
    "GeocodeCacheEntry",
    "IdempotencyRecord",
    "KpiCorrection",
    "KpiMonth",
    "KpiMonthSnapshot",
    "KpiTarget",
    "KpiTargetProposal",
    "PROPOSAL_STATUSES",
    "TARGET_SCOPES",
    "Office",
    "Organization",
    "OrganizationSkill",
    "OrganizationStats",
    "OutboxEvent",
    "Referral",
    "ReferralEvent",
    "User",
    "UTCDateTime",
    "WebhookAttempt",
    "utcnow",
]
