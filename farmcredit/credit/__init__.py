"""Credit: loan limits with their arithmetic, risk grades, decisions, reasons, borrower totals."""

from farmcredit.credit.borrowers import aggregate_borrowers
from farmcredit.credit.limit import assign_limits
from farmcredit.credit.overlap import Overlaps, find_overlaps
from farmcredit.credit.risk import MonotonicScorecard, RiskModel, load_risk_model

__all__ = [
    "MonotonicScorecard",
    "Overlaps",
    "RiskModel",
    "aggregate_borrowers",
    "assign_limits",
    "find_overlaps",
    "load_risk_model",
]
