"""The practitioner's report: a folder of photos and a model (or the models it trains) -> OUT/report.json and a
self-contained OUT/report.html (`make`, `html`)."""

from .make import ModelResult, ReportConfig, conclude, make_report, summary_lines

__all__ = ["ReportConfig", "ModelResult", "make_report", "conclude", "summary_lines"]
