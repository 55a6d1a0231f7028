"""Report and leaderboard over records: pandas tables (Markdown + CSV), GLUE scores, a leaderboard page with a
Pareto plot and a recommendation. The numbers they compare are computed in bench.stats.

    rows         the record frame, the keys tables group by, the cost columns, unmaintained-runtime marks
    tables       comparison table, cells without numbers, environment lines, report.md/.csv
    glue_scores  GLUE columns of the comparison table and the GLUE scores table
    ranking      the leaderboard table and its recommendation per machine × backbone × task
    plot         the Pareto plot (PNG + SVG)
    leaderboard  leaderboard.md/.csv/.html (assets/: the page's skeleton, script and style)
    peaks        GEMM peaks per machine and precision kind
"""

from bench.report.glue_scores import glue_scores
from bench.report.leaderboard import write as write_leaderboard
from bench.report.peaks import machine_peaks
from bench.report.ranking import NO_ACCURACY, board, recommendations, speed_column
from bench.report.rows import frame
from bench.report.tables import comparison, environment_lines, problem_summary, problems, write

__all__ = ["NO_ACCURACY", "board", "comparison", "environment_lines", "frame", "glue_scores", "machine_peaks",
           "problem_summary", "problems", "recommendations", "speed_column", "write", "write_leaderboard"]
