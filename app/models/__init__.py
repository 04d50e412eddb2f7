"""SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from app.models.accounts import Account, Contact
from app.models.alerts import Alert, AlertCooldown, AlertRoutingVersion
from app.models.auth import ApiToken, User
from app.models.enums import (
    AccountStatus,
    AlertStatus,
    ContactRole,
    FeedbackKind,
    GoalStatus,
    JobKind,
    JobRequestStatus,
    JobStatus,
    OutcomeKind,
    PlayRunStatus,
    Role,
    TaskStatus,
    TicketPriority,
    TicketStatus,
)
from app.models.ingest import DailyActiveUser, QuarantinedRecord, SegmentMessage, SourceCursor
from app.models.jobs import JobRequest, JobRun, SchedulerLease
from app.models.learning import ChurnModel
from app.models.plays import Event, PlayDefinition, PlayRun, Task
from app.models.raw import (
    DailyUsage,
    Feedback,
    Goal,
    LicenseSnapshot,
    Outcome,
    SupportTicket,
    UsageSignal,
)
from app.models.scores import HealthScore, LatestScore, ScoreCalibration, ScoringConfigVersion
from app.models.watchlist import AuditEntry, BandOverride, WatchlistPin

__all__ = [
    "Account",
    "AccountStatus",
    "Alert",
    "AlertCooldown",
    "AlertRoutingVersion",
    "AlertStatus",
    "ApiToken",
    "AuditEntry",
    "BandOverride",
    "ChurnModel",
    "Contact",
    "ContactRole",
    "DailyActiveUser",
    "DailyUsage",
    "Event",
    "Feedback",
    "FeedbackKind",
    "Goal",
    "GoalStatus",
    "HealthScore",
    "JobKind",
    "JobRequest",
    "JobRequestStatus",
    "JobRun",
    "JobStatus",
    "LatestScore",
    "LicenseSnapshot",
    "Outcome",
    "OutcomeKind",
    "PlayDefinition",
    "PlayRun",
    "PlayRunStatus",
    "QuarantinedRecord",
    "Role",
    "SchedulerLease",
    "ScoreCalibration",
    "ScoringConfigVersion",
    "SegmentMessage",
    "SourceCursor",
    "SupportTicket",
    "Task",
    "TaskStatus",
    "TicketPriority",
    "TicketStatus",
    "UsageSignal",
    "User",
    "WatchlistPin",
]
