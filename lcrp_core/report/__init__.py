"""Reports (tables, plots, report specs) and trial-database inspection (`lcrp report`, `lcrp db`).

See docs/report-spec.md. Heavy libraries (optuna, matplotlib) are imported inside functions.
"""

from lcrp_core.report.build import ReportResult, build_report, render_report
from lcrp_core.report.cells import Row, StudyRows, study_rows
from lcrp_core.report.db import export_records, import_reference, read_reference_csv
from lcrp_core.report.spec import ReportSpec, load_report_spec
from lcrp_core.report.study import MissingStudy, StudyData, find_study, read_study
from lcrp_core.report.tables import Table, TableBlock, to_html, to_latex, to_markdown, to_text

__all__ = [
    "MissingStudy", "ReportResult", "ReportSpec", "Row", "StudyData", "StudyRows", "Table",
    "TableBlock", "build_report", "export_records", "find_study", "import_reference", "load_report_spec",
    "read_reference_csv", "read_study", "render_report", "study_rows", "to_html", "to_latex",
    "to_markdown", "to_text",
]
