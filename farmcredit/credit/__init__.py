"""Credit v1: loan limit per parcel with its arithmetic, decisions, reasons, borrower totals."""

from farmcredit.credit.borrowers import aggregate_borrowers
from farmcredit.credit.limit import assign_limits

__all__ = ["aggregate_borrowers", "assign_limits"]
